"""Column types that read and write the same Python values on PostgreSQL and SQLite."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import peewee

SQLITE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def on_sqlite(field: peewee.Field) -> bool:
    return isinstance(field.model._meta.database, peewee.SqliteDatabase)


def time_to_db(value: datetime, sqlite: bool) -> Any:
    """An aware UTC datetime for PostgreSQL, sortable UTC text for SQLite."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime(SQLITE_TIME_FORMAT) if sqlite else value


def time_from_db(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def json_to_db(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def json_from_db(value: Any) -> Any:
    """psycopg2 decodes jsonb itself; SQLite hands back the text."""
    return json.loads(value) if isinstance(value, (str, bytes)) else value


class UUIDText(peewee.Field):
    """A UUID as its canonical string (``uuid`` on PostgreSQL, text on SQLite)."""

    field_type = "UUID"

    def db_value(self, value: Any) -> str | None:
        return None if value is None else str(uuid.UUID(str(value)))

    def python_value(self, value: Any) -> str | None:
        return None if value is None else str(value)


class UTCDateTime(peewee.Field):
    """An aware UTC datetime (``timestamptz`` on PostgreSQL, sortable text on SQLite)."""

    field_type = "TIMESTAMPTZ"

    def db_value(self, value: datetime | None) -> Any:
        return None if value is None else time_to_db(value, on_sqlite(self))

    def python_value(self, value: Any) -> datetime | None:
        return time_from_db(value)


class JSONValue(peewee.Field):
    """Any JSON value (``jsonb`` on PostgreSQL, text on SQLite)."""

    field_type = "JSONB"

    def db_value(self, value: Any) -> str | None:
        return json_to_db(value)

    def python_value(self, value: Any) -> Any:
        return json_from_db(value)
