-- Async runs (issue 15): one row beside each run asked for with ?async=true or
-- Prefer: respond-async: its callback, how many times a worker took it and
-- whether the broker redelivered it after a worker died. ``via`` says who holds it
-- while queued: the broker (the abandoned-run sweep leaves such runs alone) or a server.
CREATE TABLE IF NOT EXISTS async_runs (
    run_id UUID PRIMARY KEY,
    project_uuid VARCHAR(255) NOT NULL,
    callback_url TEXT NOT NULL DEFAULT '',
    via VARCHAR(10) NOT NULL DEFAULT 'server' CHECK (via IN ('broker', 'server')),
    attempts INTEGER NOT NULL DEFAULT 0,
    redelivered BOOLEAN NOT NULL DEFAULT FALSE,
    worker VARCHAR(255) NOT NULL DEFAULT '',
    callback_state VARCHAR(20) NOT NULL DEFAULT 'none'
        CHECK (callback_state IN ('none', 'pending', 'delivered', 'failed')),
    callback_attempts INTEGER NOT NULL DEFAULT 0,
    callback_error TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

-- The key each project's callbacks are signed with (HMAC-SHA256).
CREATE TABLE IF NOT EXISTS project_signing_keys (
    project_uuid VARCHAR(255) PRIMARY KEY,
    signing_key TEXT NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
