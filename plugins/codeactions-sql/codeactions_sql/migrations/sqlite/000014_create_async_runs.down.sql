DROP TABLE IF EXISTS project_signing_keys;
DROP TABLE IF EXISTS async_runs;
