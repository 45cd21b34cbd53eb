-- expires_at is UTC text in the store's sortable format (see codeactions_sql.fields).
CREATE TABLE IF NOT EXISTS scheduler_locks (
    name VARCHAR(255) PRIMARY KEY,
    holder VARCHAR(255) NOT NULL,
    expires_at TEXT NOT NULL
);
