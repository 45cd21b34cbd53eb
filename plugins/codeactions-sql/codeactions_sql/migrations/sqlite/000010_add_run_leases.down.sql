DROP INDEX IF EXISTS idx_coderuns_unfinished_owner;
ALTER TABLE coderuns DROP COLUMN lease_expires_at;
ALTER TABLE coderuns DROP COLUMN owner;
