-- Run leases: the server process running a run owns it and renews its claim
-- (lease_expires_at) while it lives; once a process dies, its queued and
-- started runs are failed as soon as the lease lapses. Runs without an owner
-- (created before this version, or waiting for a worker to take them) keep
-- the older rule. The partial index holds unfinished runs only: renewing a
-- process's leases and finding expired ones touch a handful of rows.
ALTER TABLE coderuns ADD COLUMN IF NOT EXISTS owner TEXT;
ALTER TABLE coderuns ADD COLUMN IF NOT EXISTS lease_expires_at TIMESTAMP WITH TIME ZONE;
CREATE INDEX IF NOT EXISTS idx_coderuns_unfinished_owner
    ON coderuns(owner, lease_expires_at) WHERE status IN ('queued', 'started');
