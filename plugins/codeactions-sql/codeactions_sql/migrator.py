"""golang-migrate compatible migrations: numbered SQL files and ``schema_migrations``.

A database migrated by the old service (version 5) continues from 000006. Each
migration runs in one transaction together with its version record, so a
failed migration leaves the database as it was; a database left *dirty* by
golang-migrate is refused until an operator repairs it and forces a version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable

import peewee

from codeactions_core.errors import SchemaBehind, StoreError
from codeactions_core.store import SchemaStatus

FILE_NAME = re.compile(r"^(\d+)_(\w+)\.up\.sql$")
LOCK_KEY = 0x636F64656163  # "codeac": serialises concurrent `codeactions migrate` runs


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up: Traversable


def migrations_for(dialect: str) -> list[Migration]:
    """The migrations shipped for ``postgres`` (the golang-migrate set) or ``sqlite``."""
    folder = resources.files("codeactions_sql") / "migrations"
    if dialect == "sqlite":
        folder = folder / "sqlite"
    found = []
    for entry in folder.iterdir():
        match = FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry))
    return sorted(found, key=lambda migration: migration.version)


class Migrator:
    def __init__(self, database: peewee.Database, dialect: str) -> None:
        self._db = database
        self._dialect = dialect
        self._migrations = migrations_for(dialect)

    @property
    def latest(self) -> int:
        return self._migrations[-1].version if self._migrations else 0

    def status(self) -> SchemaStatus:
        if not self._has_table():
            return SchemaStatus(current=0, latest=self.latest)
        row = self._db.execute_sql(
            "SELECT version, dirty FROM schema_migrations LIMIT 1"
        ).fetchone()
        if row is None:
            return SchemaStatus(current=0, latest=self.latest)
        return SchemaStatus(current=int(row[0]), latest=self.latest, dirty=bool(row[1]))

    def migrate(self, target: int | None = None) -> list[int]:
        target = self.latest if target is None else target
        applied = []
        with self._lock():
            self._ensure_table()
            status = self.status()
            if status.dirty:
                raise SchemaBehind(
                    f"the schema is dirty at version {status.current}; repair it, then run "
                    f"`codeactions migrate --force {status.current}`"
                )
            for migration in self._migrations:
                if status.current < migration.version <= target:
                    self._apply(migration)
                    applied.append(migration.version)
        return applied

    def force(self, version: int) -> None:
        with self._lock():
            self._ensure_table()
            with self._db.atomic():
                self._record(version)

    def _apply(self, migration: Migration) -> None:
        sql = migration.up.read_text(encoding="utf-8")
        try:
            with self._db.atomic():
                if sql.strip() and not _only_comments(sql):
                    self._execute_script(sql)
                self._record(migration.version)
        except Exception as exc:  # any driver error: the transaction was rolled back
            raise StoreError(
                f"migration {migration.version:06d}_{migration.name} failed "
                f"and was rolled back: {exc}"
            ) from exc

    def _execute_script(self, sql: str) -> None:
        if self._dialect == "sqlite":
            # sqlite3 runs one statement per execute(); split on statement ends.
            connection = self._db.connection()
            for statement in _sqlite_statements(sql):
                connection.execute(statement)
        else:
            # No parameters at all, so psycopg2 leaves "%" in the script alone.
            with self._db.connection().cursor() as cursor:
                cursor.execute(sql)

    def _record(self, version: int) -> None:
        self._db.execute_sql("DELETE FROM schema_migrations")
        self._db.execute_sql(
            "INSERT INTO schema_migrations (version, dirty) VALUES (%s, %s)"
            if self._dialect == "postgres"
            else "INSERT INTO schema_migrations (version, dirty) VALUES (?, ?)",
            (version, False),
        )

    def _has_table(self) -> bool:
        return self._db.table_exists("schema_migrations")

    def _ensure_table(self) -> None:
        self._db.execute_sql(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version BIGINT NOT NULL PRIMARY KEY, dirty BOOLEAN NOT NULL)"
        )

    def _lock(self) -> _MigrationLock:
        return _MigrationLock(self._db, self._dialect)


class _MigrationLock:
    """A PostgreSQL advisory lock held for the whole run (SQLite serialises writers itself)."""

    def __init__(self, database: peewee.Database, dialect: str) -> None:
        self._db = database
        self._active = dialect == "postgres"

    def __enter__(self) -> None:
        if self._active:
            self._db.execute_sql("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))

    def __exit__(self, *exc_info: object) -> None:
        if self._active:
            self._db.execute_sql("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def _only_comments(sql: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in sql.splitlines())


def _sqlite_statements(sql: str) -> list[str]:
    import sqlite3

    statements, pending = [], ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if not _only_comments(pending):
                statements.append(pending)
            pending = ""
    return statements
