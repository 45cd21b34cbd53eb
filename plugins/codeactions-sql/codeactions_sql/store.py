"""The SQL store: PostgreSQL for production, SQLite as the embedded default."""

from __future__ import annotations

import peewee

from codeactions_core.errors import StoreError
from codeactions_core.settings import Settings
from codeactions_core.store import SchemaStatus
from codeactions_sql import deadlines
from codeactions_sql.async_runs import SqlAsyncRuns
from codeactions_sql.connection import (
    create_postgres_database,
    database_uri,
    open_postgres,
    open_sqlite,
    sqlite_path,
)
from codeactions_sql.flows import SqlFlows
from codeactions_sql.locks import SqlLocks
from codeactions_sql.migrator import Migrator
from codeactions_sql.models import bind_models
from codeactions_sql.repositories import (
    SqlCodes,
    SqlLibs,
    SqlLogs,
    SqlPermissions,
    SqlProjects,
    SqlRuns,
    first_line,
)
from codeactions_sql.schedules import SqlSchedules
from codeactions_sql.secrets import SqlSecrets
from codeactions_sql.statements import RunStatements
from codeactions_sql.versions import SqlVersions


class SqlStore:
    def __init__(
        self,
        database: peewee.Database,
        kind: str,
        *,
        uri: str = "",
        db_name: str = "",
        history: peewee.Database | None = None,
    ) -> None:
        """``history``, when given, is where run and log records, and the progress of flow
        executions, are written (e.g. a PostgreSQL pool committing asynchronously);
        everything else uses ``database``."""
        self.kind = kind
        self.auto_migrate = kind == "sqlite"
        self.directories: tuple[str, ...] = ()
        self.database = database
        self.history = history or database
        self._uri = uri
        self._db_name = db_name
        models = bind_models(database)
        statements = RunStatements(database, self.history)
        self.codes = SqlCodes(models.codes, statements)
        self.versions = SqlVersions(models.codes, models.code_versions)
        self.schedules = SqlSchedules(models.schedules, models.schedule_firings)
        self.runs = SqlRuns(models.runs, statements)
        self.logs = SqlLogs(models.logs, statements)
        self.projects = SqlProjects(models.projects)
        self.permissions = SqlPermissions(models.permissions)
        self.libs = SqlLibs(models.libs)
        self.locks = SqlLocks(database)
        self.secrets = SqlSecrets(models.secrets)
        self.async_runs = SqlAsyncRuns(database)
        progress = (
            bind_models(self.history).flow_executions if self.history is not database else None
        )
        self.flows = SqlFlows(
            models.flow_definitions, models.flow_versions, models.flow_executions, progress=progress
        )
        self._migrator = Migrator(database, kind)

    @classmethod
    def from_settings(cls, settings: Settings) -> SqlStore:
        uri = database_uri(settings)
        if settings.db_type == "postgres":
            timeouts = {
                "connect_timeout": settings.db_connect_timeout,
                "statement_timeout": settings.db_statement_timeout,
            }
            database = open_postgres(uri, settings.db_name, settings.db_max_pool_size, **timeouts)
            history = None
            if not settings.db_synchronous_runs:
                history = open_postgres(
                    uri,
                    settings.db_name,
                    settings.db_max_pool_size,
                    synchronous_commit=False,
                    **timeouts,
                )
            return cls(database, "postgres", uri=uri, db_name=settings.db_name, history=history)
        database = open_sqlite(uri, max(settings.db_max_pool_size, settings.request_threads))
        store = cls(database, "sqlite", uri=uri, db_name=settings.db_name)
        store.directories = (str(sqlite_path(uri).parent.resolve()),)
        return store

    def schema_status(self) -> SchemaStatus:
        try:
            return self._migrator.status()
        except peewee.OperationalError as exc:
            raise StoreError(self._unreachable(exc)) from exc

    def migrate(self, target: int | None = None) -> list[int]:
        with deadlines.unbounded():  # a migration may take long (e.g. building an index)
            return self._migrate(target)

    def _migrate(self, target: int | None) -> list[int]:
        if self.kind == "postgres" and create_postgres_database(self._uri, self._db_name):
            self.database.close_all()
        try:
            if self.kind == "postgres":
                self.database.execute_sql("SET statement_timeout = 0")
            return self._migrator.migrate(target)
        except peewee.OperationalError as exc:
            raise StoreError(self._unreachable(exc)) from exc
        finally:
            if self.kind == "postgres" and not self.database.is_closed():
                try:
                    self.database.execute_sql("RESET statement_timeout")
                except peewee.DatabaseError:
                    self.database.close()
            self.release()

    def force_version(self, version: int) -> None:
        self._migrator.force(version)
        self.release()

    def ping(self) -> None:
        try:
            self.database.execute_sql("SELECT 1").fetchone()
        except peewee.OperationalError as exc:
            raise StoreError(self._unreachable(exc)) from exc
        finally:
            self.release()

    def release(self) -> None:
        for database in {self.database, self.history}:
            if not database.is_closed() and not database.in_transaction():
                database.close()

    def close(self) -> None:
        self.release()
        for database in {self.database, self.history}:
            database.close_all()

    def _unreachable(self, exc: Exception) -> str:
        message = first_line(exc)
        if "does not exist" in message and self.kind == "postgres":
            return f"{message}: run `codeactions migrate`, which creates it"
        return f"cannot use the {self.kind} database: {message}"
