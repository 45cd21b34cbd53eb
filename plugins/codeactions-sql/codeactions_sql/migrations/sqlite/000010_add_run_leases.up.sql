-- Run leases (see the PostgreSQL migration): the owning process and when its
-- claim lapses; the partial index holds unfinished runs only.
ALTER TABLE coderuns ADD COLUMN owner TEXT;
ALTER TABLE coderuns ADD COLUMN lease_expires_at TEXT;
CREATE INDEX IF NOT EXISTS idx_coderuns_unfinished_owner
    ON coderuns(owner, lease_expires_at) WHERE status IN ('queued', 'started');
