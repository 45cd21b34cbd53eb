-- The coderuns table of the old service (golang-migrate version 3).
CREATE TABLE IF NOT EXISTS coderuns (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    mongo_object_id TEXT UNIQUE,
    code_id UUID NOT NULL,
    code_mongo_id TEXT,
    status VARCHAR(50) NOT NULL CHECK (status IN ('queued', 'started', 'completed', 'failed')),
    result TEXT,
    extra JSONB DEFAULT '{}'::jsonb,
    params JSONB DEFAULT '{}'::jsonb,
    body TEXT,
    headers JSONB DEFAULT '{}'::jsonb,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

CREATE INDEX IF NOT EXISTS idx_coderuns_mongo_object_id ON coderuns(mongo_object_id);
CREATE INDEX IF NOT EXISTS idx_coderuns_code_id ON coderuns(code_id);
CREATE INDEX IF NOT EXISTS idx_coderuns_code_mongo_id ON coderuns(code_mongo_id);
CREATE INDEX IF NOT EXISTS idx_coderuns_status ON coderuns(status);
CREATE INDEX IF NOT EXISTS idx_coderuns_created_at ON coderuns(created_at);
CREATE INDEX IF NOT EXISTS idx_coderuns_code_id_created_at ON coderuns(code_id, created_at);
CREATE INDEX IF NOT EXISTS idx_coderuns_extra ON coderuns USING GIN (extra);
CREATE INDEX IF NOT EXISTS idx_coderuns_params ON coderuns USING GIN (params);
