"""codeactions-sql: the PostgreSQL and SQLite store (peewee)."""

from __future__ import annotations

from codeactions_core import hookimpl
from codeactions_core.settings import Settings
from codeactions_sql.settings import DB_TYPES, SqlSettings
from codeactions_sql.store import SqlStore

__all__ = ["SqlSettings", "SqlStore", "codeactions_settings", "codeactions_store"]


@hookimpl(trylast=True)
def codeactions_settings() -> list[type[SqlSettings]]:
    return [SqlSettings]


@hookimpl(trylast=True)
def codeactions_store(settings: Settings) -> SqlStore | None:
    if settings.db_type in DB_TYPES:
        return SqlStore.from_settings(settings)
    return None
