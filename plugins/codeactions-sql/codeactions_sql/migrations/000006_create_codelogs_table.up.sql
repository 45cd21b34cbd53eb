-- Run logs in the database: the default log store (the old service used MongoDB or S3).
CREATE TABLE IF NOT EXISTS codelogs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    mongo_object_id TEXT UNIQUE,
    run_id UUID NOT NULL,
    code_id UUID NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0,
    type VARCHAR(10) NOT NULL CHECK (type IN ('debug', 'info', 'error')),
    content TEXT NOT NULL CHECK (char_length(content) <= 8000),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

CREATE INDEX IF NOT EXISTS idx_codelogs_run ON codelogs(run_id, created_at, seq);
CREATE INDEX IF NOT EXISTS idx_codelogs_code ON codelogs(code_id, created_at);
CREATE INDEX IF NOT EXISTS idx_codelogs_created_at ON codelogs(created_at);
