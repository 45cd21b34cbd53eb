CREATE TABLE IF NOT EXISTS projects (
    id TEXT PRIMARY KEY,
    mongo_object_id TEXT UNIQUE,
    uuid VARCHAR(255) NOT NULL UNIQUE,
    name VARCHAR(255) NOT NULL,
    authorizations TEXT DEFAULT '[]',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
