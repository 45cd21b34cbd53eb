-- Named locks with an expiry: one scheduler replica at a time does a cleaning
-- pass (taken with one INSERT ... ON CONFLICT ... WHERE expires_at <= now).
CREATE TABLE IF NOT EXISTS scheduler_locks (
    name VARCHAR(255) PRIMARY KEY,
    holder VARCHAR(255) NOT NULL,
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL
);
