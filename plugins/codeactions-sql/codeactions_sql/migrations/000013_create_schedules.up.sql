-- Schedules (issue 15): a code or flow fired on a cron expression in a time zone by
-- `codeactions scheduler`. One firing row per occurrence (the unique key), so of
-- several scheduler replicas exactly one fires each occurrence.
CREATE TABLE IF NOT EXISTS schedules (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    target_type VARCHAR(10) NOT NULL CHECK (target_type IN ('code', 'flow')),
    target_id UUID NOT NULL,
    project_uuid VARCHAR(255) NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    params JSONB NOT NULL DEFAULT '{}'::jsonb,
    variables JSONB NOT NULL DEFAULT '{}'::jsonb,
    version INTEGER,
    created_by TEXT NOT NULL DEFAULT '',
    next_fire_at TIMESTAMP WITH TIME ZONE NOT NULL,
    last_fired_at TIMESTAMP WITH TIME ZONE,
    missed BIGINT NOT NULL DEFAULT 0,
    last_missed_at TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

CREATE INDEX IF NOT EXISTS idx_schedules_target ON schedules(target_type, target_id, created_at);
CREATE INDEX IF NOT EXISTS idx_schedules_next_fire_at ON schedules(next_fire_at);

CREATE TABLE IF NOT EXISTS schedule_firings (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    schedule_id UUID NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
    scheduled_for TIMESTAMP WITH TIME ZONE NOT NULL,
    fired_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    status VARCHAR(10) NOT NULL CHECK (status IN ('started', 'fired', 'failed')),
    run_id UUID,
    execution_id UUID,
    error TEXT NOT NULL DEFAULT '',
    holder TEXT NOT NULL DEFAULT '',
    UNIQUE (schedule_id, scheduled_for)
);
