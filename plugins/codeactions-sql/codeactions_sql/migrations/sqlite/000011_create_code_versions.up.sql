-- The tables of 000011 on SQLite. SQLite has no sha256(): codes stored before get
-- their version 1 on first read (CodeService), not here.
CREATE TABLE IF NOT EXISTS code_versions (
    id TEXT PRIMARY KEY,
    code_id TEXT NOT NULL,
    number INTEGER NOT NULL CHECK (number > 0),
    source TEXT NOT NULL,
    language VARCHAR(50) NOT NULL,
    timeout INTEGER NOT NULL,
    sha256 CHAR(64) NOT NULL,
    author TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    UNIQUE (code_id, number)
);

ALTER TABLE codes ADD COLUMN version INTEGER;
ALTER TABLE coderuns ADD COLUMN code_version INTEGER;
