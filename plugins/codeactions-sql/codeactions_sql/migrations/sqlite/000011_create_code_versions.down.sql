ALTER TABLE coderuns DROP COLUMN code_version;
ALTER TABLE codes DROP COLUMN version;
DROP TABLE IF EXISTS code_versions;
