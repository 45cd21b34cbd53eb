"""The MongoDB "schema": indexes and data fixes, versioned like golang-migrate does it.

The applied version is the one document ``{version, dirty}`` of the
``schema_migrations`` collection (the layout of golang-migrate's MongoDB
driver). A database used only by the old service has none: version 0. Every
migration is idempotent and its version is recorded only once it succeeded, so
one that failed half-way (or that two starting replicas run at once) is simply
run again; this code never leaves the schema dirty, and refuses a dirty record
that another tool left.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymongo.database import Database
from pymongo.errors import PyMongoError

from codeactions_core.errors import SchemaBehind, StoreError
from codeactions_core.store import SchemaStatus
from codeactions_mongo.documents import (
    CODES,
    LEGACY_CODE_TYPES,
    LEGACY_TIME_FIELDS,
    LIBS,
    LOGS,
    PERMISSIONS,
    PROJECTS,
    RUNS,
)
from codeactions_mongo.errors import safe_message
from codeactions_mongo.flow_documents import FLOW_DEFINITIONS, FLOW_EXECUTIONS, FLOW_VERSIONS
from codeactions_mongo.lifecycle import create_schedule_indexes, create_version_indexes

VERSIONS = "schema_migrations"

ASCENDING, DESCENDING = 1, -1


@dataclass(frozen=True)
class Index:
    collection: str
    keys: tuple[tuple[str, int], ...]
    unique: bool = False
    partial: tuple[tuple[str, Any], ...] = ()
    """``partialFilterExpression`` as (field, condition) pairs; empty: a full index."""


INDEXES = (
    Index(CODES, (("project_uuid", ASCENDING), ("created_at", DESCENDING))),
    Index(RUNS, (("code_id", ASCENDING), ("created_at", DESCENDING))),
    Index(RUNS, (("created_at", ASCENDING),)),
    Index(LOGS, (("run_id", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING))),
    Index(LOGS, (("code_id", ASCENDING), ("created_at", DESCENDING))),
    Index(LOGS, (("created_at", ASCENDING),)),
    Index(PROJECTS, (("uuid", ASCENDING),), unique=True),
    Index(PERMISSIONS, (("project_uuid", ASCENDING), ("email", ASCENDING)), unique=True),
    Index(LIBS, (("name", ASCENDING), ("language", ASCENDING)), unique=True),
)
FLOW_INDEXES = (
    Index(FLOW_DEFINITIONS, (("project_uuid", ASCENDING), ("created_at", DESCENDING))),
    Index(
        FLOW_VERSIONS,
        (("flow_definition_id", ASCENDING), ("version_number", ASCENDING)),
        unique=True,
    ),
    Index(
        FLOW_VERSIONS,
        (("flow_definition_id", ASCENDING), ("status", ASCENDING), ("publish_seq", DESCENDING)),
    ),
    Index(FLOW_EXECUTIONS, (("flow_definition_id", ASCENDING), ("created_at", DESCENDING))),
    Index(FLOW_EXECUTIONS, (("flow_version_id", ASCENDING),)),
    Index(FLOW_EXECUTIONS, (("lead_id", ASCENDING),)),
    Index(FLOW_EXECUTIONS, (("started_at", DESCENDING),)),
    Index(FLOW_EXECUTIONS, (("status", ASCENDING), ("resume_at", ASCENDING))),  # what is due
)


def create(database: Database, indexes: tuple[Index, ...]) -> None:
    for index in indexes:
        options: dict[str, Any] = {"unique": index.unique}
        if index.partial:
            options["partialFilterExpression"] = dict(index.partial)
        database[index.collection].create_index(list(index.keys), **options)


def create_indexes(database: Database) -> None:
    """The indexes the listings use and the unique keys the upserts rely on."""
    create(database, INDEXES)


def create_flow_indexes(database: Database) -> None:
    """The flows' listings, the unique version numbers and the workers' due query."""
    create(database, FLOW_INDEXES)


LEASE_INDEXES = (
    # Only unfinished runs carry a lease (a run's final write removes it): a small index.
    Index(
        RUNS,
        (("owner", ASCENDING), ("lease_expires_at", ASCENDING)),
        partial=(("lease_expires_at", {"$exists": True}),),
    ),
    Index(
        RUNS, (("lease_expires_at", ASCENDING),), partial=(("lease_expires_at", {"$exists": True}),)
    ),
)


def create_lease_indexes(database: Database) -> None:
    """Renewing a process's run leases and finding expired ones (issue 13)."""
    create(database, LEASE_INDEXES)


def update_legacy_fields(database: Database) -> None:
    """Copy timestamps stored under an old name to the one queries and sorts use; rename
    the old code type the listings filter on."""
    for collection, legacy, field in LEGACY_TIME_FIELDS:
        database[collection].update_many(
            {field: {"$exists": False}, legacy: {"$exists": True}},
            [{"$set": {field: f"${legacy}"}}],
        )
    for legacy, code_type in LEGACY_CODE_TYPES.items():
        database[CODES].update_many({"type": legacy}, {"$set": {"type": str(code_type)}})


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Database], None]


MIGRATIONS = (
    Migration(1, "indexes", create_indexes),
    Migration(2, "legacy_fields", update_legacy_fields),
    Migration(3, "flow_indexes", create_flow_indexes),
    Migration(4, "run_leases", create_lease_indexes),
    # numbered as the SQL migrations of the same features (issue 15)
    Migration(11, "code_version_indexes", create_version_indexes),
    Migration(13, "schedule_indexes", create_schedule_indexes),
)
LATEST_VERSION = MIGRATIONS[-1].version


class SchemaVersions:
    """Reads, applies and forces the schema version of one database."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._versions = database[VERSIONS]

    def status(self) -> SchemaStatus:
        document = self._versions.find_one({})
        if document is None:
            return SchemaStatus(current=0, latest=LATEST_VERSION)
        return SchemaStatus(
            current=int(document.get("version") or 0),
            latest=LATEST_VERSION,
            dirty=bool(document.get("dirty")),
        )

    def migrate(self, target: int | None = None) -> list[int]:
        target = LATEST_VERSION if target is None else target
        status = self.status()
        if status.dirty:
            raise SchemaBehind(
                f"the schema is dirty at version {status.current}; repair it, then run "
                f"`codeactions migrate --force {status.current}`"
            )
        applied: list[int] = []
        for migration in MIGRATIONS:
            if status.current < migration.version <= target:
                self._apply(migration)
                applied.append(migration.version)
        return applied

    def force(self, version: int) -> None:
        self._record(version)

    def _apply(self, migration: Migration) -> None:
        try:
            migration.apply(self._database)
        except PyMongoError as exc:
            raise StoreError(
                f"migration {migration.version} ({migration.name}) failed: {safe_message(exc)}; "
                "fix the cause and run `codeactions migrate` again"
            ) from exc
        self._record(migration.version)

    def _record(self, version: int) -> None:
        """Record ``version`` as applied and clean (one document, as golang-migrate keeps it)."""
        self._versions.replace_one({}, {"version": version, "dirty": False}, upsert=True)
