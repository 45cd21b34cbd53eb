-- The tables of 000013 on SQLite (firings are deleted with their schedule by the store).
CREATE TABLE IF NOT EXISTS schedules (
    id TEXT PRIMARY KEY,
    target_type VARCHAR(10) NOT NULL CHECK (target_type IN ('code', 'flow')),
    target_id TEXT NOT NULL,
    project_uuid VARCHAR(255) NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    variables TEXT NOT NULL DEFAULT '{}',
    version INTEGER,
    created_by TEXT NOT NULL DEFAULT '',
    next_fire_at TEXT NOT NULL,
    last_fired_at TEXT,
    missed INTEGER NOT NULL DEFAULT 0,
    last_missed_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS idx_schedules_target ON schedules(target_type, target_id, created_at);
CREATE INDEX IF NOT EXISTS idx_schedules_next_fire_at ON schedules(next_fire_at);

CREATE TABLE IF NOT EXISTS schedule_firings (
    id TEXT PRIMARY KEY,
    schedule_id TEXT NOT NULL,
    scheduled_for TEXT NOT NULL,
    fired_at TEXT NOT NULL,
    status VARCHAR(10) NOT NULL CHECK (status IN ('started', 'fired', 'failed')),
    run_id TEXT,
    execution_id TEXT,
    error TEXT NOT NULL DEFAULT '',
    holder TEXT NOT NULL DEFAULT '',
    UNIQUE (schedule_id, scheduled_for)
);
