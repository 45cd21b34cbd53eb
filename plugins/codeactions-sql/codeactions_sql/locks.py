"""Scheduler locks in the ``scheduler_locks`` table (migration 000008).

A lock is taken with one statement: insert the row, or take over one whose
``expires_at`` has passed. PostgreSQL judges expiry by its own clock, so the
replicas' clocks do not matter; SQLite is embedded, its clock is this host's.
"""

from __future__ import annotations

from datetime import timedelta

import peewee

from codeactions_core.model import utcnow
from codeactions_sql.fields import time_to_db
from codeactions_sql.repositories import database_errors_as_store_errors

TAKE = (
    "INSERT INTO scheduler_locks (name, holder, expires_at) VALUES ({p}, {p}, {expires}) "
    "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
    "WHERE scheduler_locks.expires_at <= {now}"
)
POSTGRES_CLOCK = {
    "now": "clock_timestamp()",
    "expires": "clock_timestamp() + make_interval(secs => %s)",
}
SQLITE_CLOCK = {"now": "?", "expires": "?"}


@database_errors_as_store_errors
class SqlLocks:
    def __init__(self, database: peewee.Database) -> None:
        self._db = database
        self._sqlite = isinstance(database, peewee.SqliteDatabase)
        p = database.param
        self._take = TAKE.format(p=p, **(SQLITE_CLOCK if self._sqlite else POSTGRES_CLOCK))
        self._release = f"DELETE FROM scheduler_locks WHERE name = {p} AND holder = {p}"

    def try_acquire(self, name: str, holder: str, ttl: timedelta) -> bool:
        if self._sqlite:
            now = utcnow()
            params: tuple = (name, holder, time_to_db(now + ttl, True), time_to_db(now, True))
        else:
            params = (name, holder, ttl.total_seconds())
        return self._db.execute_sql(self._take, params).rowcount == 1

    def release(self, name: str, holder: str) -> bool:
        return self._db.execute_sql(self._release, (name, holder)).rowcount > 0
