-- The tables of 000009 on SQLite: ids as text, times as UTC text in the store's
-- sortable format (see codeactions_sql.fields), JSON as text, booleans as 0/1.
CREATE TABLE IF NOT EXISTS flow_definitions (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    project_uuid VARCHAR(255) NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    is_active INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1))
);

CREATE INDEX IF NOT EXISTS idx_flow_definitions_project
    ON flow_definitions(project_uuid, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_flow_definitions_active
    ON flow_definitions(project_uuid, created_at DESC) WHERE is_active = 1;

CREATE TABLE IF NOT EXISTS flow_versions (
    id TEXT PRIMARY KEY,
    flow_definition_id TEXT NOT NULL REFERENCES flow_definitions(id) ON DELETE CASCADE,
    version_number INTEGER NOT NULL CHECK (version_number > 0),
    steps TEXT NOT NULL DEFAULT '[]',
    status VARCHAR(20) NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'archived')),
    published_at TEXT,
    created_by TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    change_notes TEXT NOT NULL DEFAULT '',
    UNIQUE (flow_definition_id, version_number)
);

CREATE UNIQUE INDEX IF NOT EXISTS idx_flow_versions_one_published
    ON flow_versions(flow_definition_id) WHERE status = 'published';

CREATE TABLE IF NOT EXISTS flow_executions (
    id TEXT PRIMARY KEY,
    flow_definition_id TEXT NOT NULL REFERENCES flow_definitions(id),
    flow_version_id TEXT NOT NULL REFERENCES flow_versions(id),
    lead_id TEXT,
    status VARCHAR(20) NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    logs TEXT NOT NULL DEFAULT '[]',
    result TEXT NOT NULL DEFAULT '{}',
    error_message TEXT NOT NULL DEFAULT '',
    started_at TEXT,
    finished_at TEXT,
    executed_by TEXT NOT NULL DEFAULT '',
    context TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    next_step INTEGER NOT NULL DEFAULT 0 CHECK (next_step >= 0),
    revision INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires_at TEXT,
    resume_at TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1))
);

CREATE INDEX IF NOT EXISTS idx_flow_executions_flow_def
    ON flow_executions(flow_definition_id, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_flow_executions_flow_version ON flow_executions(flow_version_id);
CREATE INDEX IF NOT EXISTS idx_flow_executions_lead ON flow_executions(lead_id);
CREATE INDEX IF NOT EXISTS idx_flow_executions_status ON flow_executions(status);
CREATE INDEX IF NOT EXISTS idx_flow_executions_started_at ON flow_executions(started_at DESC);
CREATE INDEX IF NOT EXISTS idx_flow_executions_due
    ON flow_executions(resume_at) WHERE status IN ('pending', 'running');
