CREATE TABLE IF NOT EXISTS user_permissions (
    id TEXT PRIMARY KEY,
    mongo_object_id TEXT UNIQUE,
    project_uuid VARCHAR(255) NOT NULL,
    email VARCHAR(255) NOT NULL,
    role INTEGER NOT NULL CHECK (role IN (1, 2, 3)),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE UNIQUE INDEX IF NOT EXISTS idx_user_permissions_unique_project_email
    ON user_permissions(project_uuid, email);
CREATE INDEX IF NOT EXISTS idx_user_permissions_email ON user_permissions(email);
