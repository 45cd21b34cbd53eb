-- Flows: versioned flow definitions (draft -> published -> archived) and their
-- executions, persisted state machines that workers claim with a lease.
-- created_by/executed_by are identities (an email, or "service"), not user ids.
CREATE TABLE IF NOT EXISTS flow_definitions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    project_uuid VARCHAR(255) NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    is_active BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE INDEX IF NOT EXISTS idx_flow_definitions_project
    ON flow_definitions(project_uuid, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_flow_definitions_active
    ON flow_definitions(project_uuid, created_at DESC) WHERE is_active;

-- Versions belong to their definition (deleted with it). The unique key's
-- index also serves "a flow's versions by number, highest first" (a btree
-- scans both ways), and the partial unique index, which keeps at most one
-- published version per flow, is how the published version is found.
CREATE TABLE IF NOT EXISTS flow_versions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    flow_definition_id UUID NOT NULL REFERENCES flow_definitions(id) ON DELETE CASCADE,
    version_number INTEGER NOT NULL CHECK (version_number > 0),
    steps JSONB NOT NULL DEFAULT '[]'::jsonb,
    status VARCHAR(20) NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'archived')),
    published_at TIMESTAMP WITH TIME ZONE,
    created_by TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    change_notes TEXT NOT NULL DEFAULT '',
    CONSTRAINT flow_versions_flow_definition_id_version_number_key UNIQUE (flow_definition_id, version_number)
);

CREATE UNIQUE INDEX IF NOT EXISTS idx_flow_versions_one_published
    ON flow_versions(flow_definition_id) WHERE status = 'published';

-- Executions are history: a definition or version that has some cannot be
-- deleted (no cascade). The engine columns: next_step (the step to run or
-- resume), revision (grows with every claim), the lease (lease_owner until
-- lease_expires_at), resume_at (when it is due to be driven next) and
-- cancel_requested (for the lease holder to honour).
CREATE TABLE IF NOT EXISTS flow_executions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    flow_definition_id UUID NOT NULL REFERENCES flow_definitions(id),
    flow_version_id UUID NOT NULL REFERENCES flow_versions(id),
    lead_id TEXT,
    status VARCHAR(20) NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    logs JSONB NOT NULL DEFAULT '[]'::jsonb,
    result JSONB NOT NULL DEFAULT '{}'::jsonb,
    error_message TEXT NOT NULL DEFAULT '',
    started_at TIMESTAMP WITH TIME ZONE,
    finished_at TIMESTAMP WITH TIME ZONE,
    executed_by TEXT NOT NULL DEFAULT '',
    context JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    next_step INTEGER NOT NULL DEFAULT 0 CHECK (next_step >= 0),
    revision BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires_at TIMESTAMP WITH TIME ZONE,
    resume_at TIMESTAMP WITH TIME ZONE,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX IF NOT EXISTS idx_flow_executions_flow_def
    ON flow_executions(flow_definition_id, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_flow_executions_flow_version ON flow_executions(flow_version_id);
CREATE INDEX IF NOT EXISTS idx_flow_executions_lead ON flow_executions(lead_id);
CREATE INDEX IF NOT EXISTS idx_flow_executions_status ON flow_executions(status);
CREATE INDEX IF NOT EXISTS idx_flow_executions_started_at ON flow_executions(started_at DESC);
-- The workers' "what is due" query: unfinished executions by resume_at.
CREATE INDEX IF NOT EXISTS idx_flow_executions_due
    ON flow_executions(resume_at) WHERE status IN ('pending', 'running');
