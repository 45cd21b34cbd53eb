"""codeactions-sql: the PostgreSQL and SQLite store (peewee)."""

from __future__ import annotations

from codeactions_core import hookimpl
from codeactions_core.settings import Settings
from codeactions_sql.store import SqlStore

__all__ = ["SqlStore", "codeactions_store"]


@hookimpl(trylast=True)
def codeactions_store(settings: Settings) -> SqlStore | None:
    if settings.db_type in ("sqlite", "postgres"):
        return SqlStore.from_settings(settings)
    return None
