-- SQLite twin of ../000001: the same logical table. Timestamps are UTC text
-- ('YYYY-MM-DD HH:MM:SS.ffffff'), JSON is text, ids are canonical UUID text.
-- The language check already has the shape PostgreSQL gets in 000007.
CREATE TABLE IF NOT EXISTS codes (
    id TEXT PRIMARY KEY,
    mongo_object_id TEXT UNIQUE,
    name VARCHAR(255) NOT NULL,
    type VARCHAR(50) NOT NULL CHECK (type IN ('flow', 'endpoint')),
    source TEXT NOT NULL,
    language VARCHAR(50) NOT NULL CHECK (length(language) BETWEEN 1 AND 50),
    url VARCHAR(512),
    project_uuid VARCHAR(255) NOT NULL,
    timeout INTEGER NOT NULL DEFAULT 60 CHECK (timeout >= 5 AND timeout <= 300),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS idx_codes_project_type ON codes(project_uuid, type);
CREATE INDEX IF NOT EXISTS idx_codes_created_at ON codes(created_at);
