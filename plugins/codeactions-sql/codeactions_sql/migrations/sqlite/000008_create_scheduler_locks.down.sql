DROP TABLE IF EXISTS scheduler_locks;
