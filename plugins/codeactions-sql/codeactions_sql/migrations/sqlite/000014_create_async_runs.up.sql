-- Async runs (issue 15); times are UTC text in the store's sortable format.
CREATE TABLE IF NOT EXISTS async_runs (
    run_id TEXT PRIMARY KEY,
    project_uuid VARCHAR(255) NOT NULL,
    callback_url TEXT NOT NULL DEFAULT '',
    via VARCHAR(10) NOT NULL DEFAULT 'server' CHECK (via IN ('broker', 'server')),
    attempts INTEGER NOT NULL DEFAULT 0,
    redelivered INTEGER NOT NULL DEFAULT 0,
    worker VARCHAR(255) NOT NULL DEFAULT '',
    callback_state VARCHAR(20) NOT NULL DEFAULT 'none'
        CHECK (callback_state IN ('none', 'pending', 'delivered', 'failed')),
    callback_attempts INTEGER NOT NULL DEFAULT 0,
    callback_error TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS project_signing_keys (
    project_uuid VARCHAR(255) PRIMARY KEY,
    signing_key TEXT NOT NULL,
    created_at TEXT NOT NULL
);
