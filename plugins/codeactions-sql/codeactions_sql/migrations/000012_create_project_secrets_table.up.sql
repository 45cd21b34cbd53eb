-- Project secrets (issue 15): the value only ever encrypted (a Fernet token, SECRETS_KEY).
CREATE TABLE IF NOT EXISTS project_secrets (
    project_uuid VARCHAR(255) NOT NULL,
    name VARCHAR(128) NOT NULL,
    ciphertext TEXT NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    PRIMARY KEY (project_uuid, name)
);
