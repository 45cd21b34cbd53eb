CREATE TABLE IF NOT EXISTS codelibs (
    id TEXT PRIMARY KEY,
    mongo_object_id TEXT UNIQUE,
    name VARCHAR(255) NOT NULL,
    language VARCHAR(50) NOT NULL CHECK (language IN ('python')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE UNIQUE INDEX IF NOT EXISTS idx_codelibs_unique_name_language ON codelibs(name, language);
