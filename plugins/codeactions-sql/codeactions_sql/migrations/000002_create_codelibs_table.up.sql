-- The codelibs table of the old service (golang-migrate version 2).
CREATE TABLE IF NOT EXISTS codelibs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    mongo_object_id TEXT UNIQUE,
    name VARCHAR(255) NOT NULL,
    language VARCHAR(50) NOT NULL CHECK (language IN ('python')),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

CREATE INDEX IF NOT EXISTS idx_codelibs_mongo_object_id ON codelibs(mongo_object_id);
CREATE INDEX IF NOT EXISTS idx_codelibs_name ON codelibs(name);
CREATE INDEX IF NOT EXISTS idx_codelibs_language ON codelibs(language);
CREATE INDEX IF NOT EXISTS idx_codelibs_created_at ON codelibs(created_at);
CREATE UNIQUE INDEX IF NOT EXISTS idx_codelibs_unique_name_language ON codelibs(name, language);
