CREATE TABLE IF NOT EXISTS coderuns (
    id TEXT PRIMARY KEY,
    mongo_object_id TEXT UNIQUE,
    code_id TEXT NOT NULL,
    code_mongo_id TEXT,
    status VARCHAR(50) NOT NULL CHECK (status IN ('queued', 'started', 'completed', 'failed')),
    result TEXT,
    extra TEXT DEFAULT '{}',
    params TEXT DEFAULT '{}',
    body TEXT,
    headers TEXT DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS idx_coderuns_code_id_created_at ON coderuns(code_id, created_at);
CREATE INDEX IF NOT EXISTS idx_coderuns_created_at ON coderuns(created_at);
