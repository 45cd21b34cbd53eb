-- Immutable code versions (issue 15): every change of a code's source, language or
-- timeout is a new numbered version; codes.version is the current one and every run
-- records the version it ran. Codes stored before are version 1, filled in here.
CREATE TABLE IF NOT EXISTS code_versions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    code_id UUID NOT NULL,
    number INTEGER NOT NULL CHECK (number > 0),
    source TEXT NOT NULL,
    language VARCHAR(50) NOT NULL,
    timeout INTEGER NOT NULL,
    sha256 CHAR(64) NOT NULL,
    author TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    UNIQUE (code_id, number)
);

ALTER TABLE codes ADD COLUMN IF NOT EXISTS version INTEGER;
ALTER TABLE coderuns ADD COLUMN IF NOT EXISTS code_version INTEGER;

INSERT INTO code_versions (code_id, number, source, language, timeout, sha256, created_at)
SELECT id, 1, source, language, COALESCE(timeout, 60),
       encode(sha256(convert_to(source, 'UTF8')), 'hex'), updated_at
FROM codes
WHERE version IS NULL
ON CONFLICT (code_id, number) DO NOTHING;

UPDATE codes SET version = 1 WHERE version IS NULL;
