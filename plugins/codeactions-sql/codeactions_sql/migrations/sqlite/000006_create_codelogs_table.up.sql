CREATE TABLE IF NOT EXISTS codelogs (
    id TEXT PRIMARY KEY,
    mongo_object_id TEXT UNIQUE,
    run_id TEXT NOT NULL,
    code_id TEXT NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0,
    type VARCHAR(10) NOT NULL CHECK (type IN ('debug', 'info', 'error')),
    content TEXT NOT NULL CHECK (length(content) <= 8000),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS idx_codelogs_run ON codelogs(run_id, created_at, seq);
CREATE INDEX IF NOT EXISTS idx_codelogs_code ON codelogs(code_id, created_at);
CREATE INDEX IF NOT EXISTS idx_codelogs_created_at ON codelogs(created_at);
