"""The MongoDB store, on the collections of the old service (see ``documents``)."""

from __future__ import annotations

from typing import Any

from codeactions_core.settings import Settings
from codeactions_core.store import SchemaStatus
from codeactions_mongo.async_runs import ASYNC_RUNS, SIGNING_KEYS, MongoAsyncRuns
from codeactions_mongo.client import Connection, open_client
from codeactions_mongo.documents import CODES, LIBS, LOGS, PERMISSIONS, PROJECTS, RUNS
from codeactions_mongo.errors import mongo_errors_as_store_errors
from codeactions_mongo.flow_documents import FLOW_DEFINITIONS, FLOW_EXECUTIONS, FLOW_VERSIONS
from codeactions_mongo.flows import MongoFlows
from codeactions_mongo.lifecycle import (
    CODE_VERSIONS,
    SCHEDULE_FIRINGS,
    SCHEDULES,
    MongoSchedules,
    MongoVersions,
)
from codeactions_mongo.locks import LOCKS, MongoLocks
from codeactions_mongo.repositories import (
    MongoCodes,
    MongoLibs,
    MongoLogs,
    MongoPermissions,
    MongoProjects,
    MongoRuns,
)
from codeactions_mongo.schema import SchemaVersions
from codeactions_mongo.secrets import SECRETS, MongoSecrets
from codeactions_mongo.settings import MongoSettings


@mongo_errors_as_store_errors
class MongoStore:
    kind = "mongodb"
    auto_migrate = True  # migrations only add indexes and fill fields: safe for `serve` to run

    def __init__(self, connection: Connection, database_name: str) -> None:
        self._connection = connection
        self.client: Any = connection.client
        self.database: Any = self.client[database_name]
        self.codes = MongoCodes(self.database[CODES])
        self.versions = MongoVersions(self.database[CODES], self.database[CODE_VERSIONS])
        self.schedules = MongoSchedules(self.database[SCHEDULES], self.database[SCHEDULE_FIRINGS])
        self.runs = MongoRuns(self.database[RUNS])
        self.logs = MongoLogs(self.database[LOGS])
        self.projects = MongoProjects(self.database[PROJECTS])
        self.permissions = MongoPermissions(self.database[PERMISSIONS])
        self.libs = MongoLibs(self.database[LIBS])
        self.locks = MongoLocks(self.database[LOCKS])
        self.secrets = MongoSecrets(self.database[SECRETS])
        self.async_runs = MongoAsyncRuns(self.database[ASYNC_RUNS], self.database[SIGNING_KEYS])
        self.flows = MongoFlows(
            self.database[FLOW_DEFINITIONS],
            self.database[FLOW_VERSIONS],
            self.database[FLOW_EXECUTIONS],
        )
        self._schema = SchemaVersions(self.database)

    @classmethod
    def from_settings(cls, settings: Settings) -> MongoStore:
        mongo = settings.plugin(MongoSettings)
        connect_ms = int(settings.db_connect_timeout * 1000)
        connection = open_client(
            mongo.mongo_db_uri,
            settings.db_max_pool_size,
            server_selection_timeout_ms=connect_ms,
            connect_timeout_ms=connect_ms,
            socket_timeout_ms=int((settings.db_statement_timeout + 2) * 1000),
        )
        return cls(connection, mongo.mongo_db_name)

    def schema_status(self) -> SchemaStatus:
        return self._schema.status()

    def migrate(self, target: int | None = None) -> list[int]:
        return self._schema.migrate(target)

    def force_version(self, version: int) -> None:
        self._schema.force(version)

    def ping(self) -> None:
        self.database.command("ping")

    def release(self) -> None:
        """Nothing to do: pymongo returns connections to its pool after each operation."""

    def close(self) -> None:
        if not self._connection.shared:
            self.client.close()
