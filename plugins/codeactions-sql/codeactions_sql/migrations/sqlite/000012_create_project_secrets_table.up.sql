-- Project secrets (issue 15): the value only ever encrypted (a Fernet token, SECRETS_KEY).
-- created_at/updated_at are UTC text in the store's sortable format (see codeactions_sql.fields).
CREATE TABLE IF NOT EXISTS project_secrets (
    project_uuid VARCHAR(255) NOT NULL,
    name VARCHAR(128) NOT NULL,
    ciphertext TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (project_uuid, name)
);
