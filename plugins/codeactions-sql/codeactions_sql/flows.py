"""Flows in the tables of migration 000009: definitions, versions and executions.

Version numbers: the transaction that numbers a new version holds the flow's
definition row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's write lock,
taken at ``BEGIN IMMEDIATE``), and a clash on the unique (flow, number) key is
retried. Publishing runs in one such transaction.

Leases: ``claim`` is one conditional ``UPDATE``, so of racing workers exactly
one gets the row. ``save`` and ``renew`` are fenced by owner: they write only
while the row still names ``owner`` as its lease holder (``save`` also only at
the revision of the claim it continues, so a second claim by the same owner
fences out the first). An expired lease that nobody has claimed since still
names its owner, whose writes are then still the latest state and safe to keep;
once another claim takes the execution (or a cancellation finishes it) the old
claim's writes match no row.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import peewee

from codeactions_core.errors import Conflict, NotFound
from codeactions_core.flows.model import (
    ExecutionStatus,
    FlowDefinition,
    FlowExecution,
    FlowVersion,
    NewExecution,
    NewFlow,
    VersionStatus,
)
from codeactions_core.model import utcnow
from codeactions_sql.fields import is_uuid
from codeactions_sql.flow_statements import COLUMNS, ExecutionStatements, from_columns
from codeactions_sql.repositories import database_errors_as_store_errors, new_id

VERSION_ATTEMPTS = 5
UNFINISHED = (str(ExecutionStatus.PENDING), str(ExecutionStatus.RUNNING))


def same_id(stored: str, given: str) -> bool:
    """Whether ``given`` spells the stored UUID (in any case, with or without hyphens)."""
    return is_uuid(given) and uuid.UUID(given) == uuid.UUID(stored)


def to_definition(row: Any) -> FlowDefinition:
    return FlowDefinition(
        id=row.id,
        name=row.name,
        project_uuid=row.project_uuid,
        description=row.description or "",
        created_by=row.created_by or "",
        is_active=bool(row.is_active),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def to_version(row: Any) -> FlowVersion:
    return FlowVersion(
        id=row.id,
        flow_definition_id=row.flow_definition_id,
        version_number=row.version_number,
        steps=row.steps if isinstance(row.steps, list) else [],
        status=VersionStatus(row.status),
        published_at=row.published_at,
        created_by=row.created_by or "",
        change_notes=row.change_notes or "",
        created_at=row.created_at,
    )


def to_execution(row: Any) -> FlowExecution:
    """An execution from a row of the executions model."""
    return from_columns({column: getattr(row, column) for column in COLUMNS})


def insert_entity(model: type[peewee.Model], entity: Any, **columns: Any) -> None:
    """Insert ``entity`` (a dataclass whose fields are columns of ``model``) as a new row;
    ``columns`` replace some of its values."""
    values = {field.name: getattr(entity, field.name) for field in dataclasses.fields(entity)}
    model.insert(**{**values, **columns}).execute()


@database_errors_as_store_errors
class SqlFlows:
    def __init__(
        self,
        definitions: type[peewee.Model],
        versions: type[peewee.Model],
        executions: type[peewee.Model],
        progress: type[peewee.Model] | None = None,
    ) -> None:
        """``progress``: the executions model that claims, renewals and saves of the engine
        write through (e.g. bound to a PostgreSQL pool committing asynchronously)."""
        self.definitions = definitions
        self.versions = versions
        self.executions = executions
        self.progress = progress or executions
        self._db: peewee.Database = definitions._meta.database
        self._sqlite = isinstance(self._db, peewee.SqliteDatabase)
        progress_db = self.progress._meta.database
        self._statements = (
            ExecutionStatements(self._db, progress_db)
            if self._db.returning_clause and progress_db.returning_clause
            else None
        )

    # -- definitions ----------------------------------------------------------------------

    def create_definition(self, new: NewFlow) -> FlowDefinition:
        now = utcnow()
        flow = FlowDefinition(
            id=new_id(),
            name=new.name,
            project_uuid=new.project_uuid,
            description=new.description,
            created_by=new.created_by,
            created_at=now,
            updated_at=now,
        )
        insert_entity(self.definitions, flow)
        return flow

    def get_definition(self, flow_id: str) -> FlowDefinition | None:
        if not is_uuid(flow_id):
            return None
        row = self.definitions.get_or_none(self.definitions.id == flow_id)
        return to_definition(row) if row else None

    def list_definitions(
        self, project_uuid: str, *, active_only: bool = False
    ) -> list[FlowDefinition]:
        D = self.definitions
        query = D.select().where(D.project_uuid == project_uuid)
        if active_only:
            query = query.where(D.is_active == True)
        return [to_definition(row) for row in query.order_by(D.created_at.desc(), D.id.desc())]

    def update_definition(
        self,
        flow_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        is_active: bool | None = None,
    ) -> FlowDefinition | None:
        if not is_uuid(flow_id):
            return None
        D = self.definitions
        changes: dict[Any, Any] = {D.updated_at: utcnow()}
        given = ((D.name, name), (D.description, description), (D.is_active, is_active))
        changes.update({field: value for field, value in given if value is not None})
        row = self._update_returning(D, D.update(changes).where(D.id == flow_id), D.id == flow_id)
        return to_definition(row) if row else None

    # -- versions -------------------------------------------------------------------------

    def create_version(
        self,
        flow_id: str,
        steps: list[dict[str, Any]],
        *,
        change_notes: str = "",
        created_by: str = "",
    ) -> FlowVersion:
        for attempt in range(VERSION_ATTEMPTS):
            try:
                return self._insert_next_version(flow_id, steps, change_notes, created_by)
            except peewee.IntegrityError:  # another process numbered the same version first
                if attempt == VERSION_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def get_version(self, flow_id: str, version_number: int) -> FlowVersion | None:
        if not is_uuid(flow_id):
            return None
        row = self.versions.get_or_none(self._version_key(flow_id, version_number))
        return to_version(row) if row else None

    def get_version_by_id(self, version_id: str) -> FlowVersion | None:
        if not is_uuid(version_id):
            return None
        row = self.versions.get_or_none(self.versions.id == version_id)
        return to_version(row) if row else None

    def list_versions(self, flow_id: str) -> list[FlowVersion]:
        if not is_uuid(flow_id):
            return []
        V = self.versions
        query = V.select().where(V.flow_definition_id == flow_id).order_by(V.version_number.desc())
        return [to_version(row) for row in query]

    def published_version(self, flow_id: str) -> FlowVersion | None:
        if not is_uuid(flow_id):
            return None
        V = self.versions
        row = (
            V.select()
            .where((V.flow_definition_id == flow_id) & (V.status == str(VersionStatus.PUBLISHED)))
            .order_by(V.published_at.desc())
            .first()
        )
        return to_version(row) if row else None

    def update_draft(
        self,
        flow_id: str,
        version_number: int,
        *,
        steps: list[dict[str, Any]] | None = None,
        change_notes: str | None = None,
    ) -> FlowVersion | None:
        if not is_uuid(flow_id):
            return None
        V = self.versions
        key = self._version_key(flow_id, version_number)
        changes: dict[Any, Any] = {}
        if steps is not None:
            changes[V.steps] = steps
        if change_notes is not None:
            changes[V.change_notes] = change_notes
        if changes:
            query = V.update(changes).where(key & (V.status == str(VersionStatus.DRAFT)))
            row = self._update_returning(V, query, key)
            if row is not None:
                return to_version(row)
        row = V.get_or_none(key)
        if row is None:
            return None
        if row.status != str(VersionStatus.DRAFT):
            raise Conflict(f"version {version_number} is {row.status}: only a draft can be changed")
        return to_version(row)

    def publish(
        self, flow_id: str, version_number: int, *, allowed_from: Sequence[VersionStatus]
    ) -> FlowVersion | None:
        if not is_uuid(flow_id):
            return None
        V = self.versions
        key = self._version_key(flow_id, version_number)
        allowed = [str(status) for status in allowed_from]
        with self._write():
            if not self._lock_definition(flow_id):
                return None
            row = V.get_or_none(key)
            if row is None:
                return None
            if row.status not in allowed:
                choices = " or ".join(allowed) or "no"
                raise Conflict(
                    f"version {version_number} is {row.status}: "
                    f"only {choices} versions can be published"
                )
            published = str(VersionStatus.PUBLISHED)
            V.update(status=str(VersionStatus.ARCHIVED)).where(
                (V.flow_definition_id == flow_id) & (V.status == published) & (V.id != row.id)
            ).execute()
            V.update(status=published, published_at=utcnow()).where(V.id == row.id).execute()
            return to_version(V.get(V.id == row.id))

    # -- executions -----------------------------------------------------------------------

    def create_execution(self, new: NewExecution) -> FlowExecution:
        if self._statements is not None:
            created = self._statements.create(new)
            if created is None:
                raise NotFound(
                    f"flow {new.flow_definition_id} has no version {new.flow_version_id}"
                )
            return created
        version = self.get_version_by_id(new.flow_version_id)
        if version is None or not same_id(version.flow_definition_id, new.flow_definition_id):
            raise NotFound(f"flow {new.flow_definition_id} has no version {new.flow_version_id}")
        now = utcnow()
        execution = FlowExecution(
            id=new_id(),
            flow_definition_id=version.flow_definition_id,
            flow_version_id=version.id,
            lead_id=new.lead_id,
            context=new.context,
            executed_by=new.executed_by,
            created_at=now,
            resume_at=now,
        )
        insert_entity(self.executions, execution, status=str(execution.status))
        return execution

    def get_execution(self, execution_id: str) -> FlowExecution | None:
        if not is_uuid(execution_id):
            return None
        row = self.executions.get_or_none(self.executions.id == execution_id)
        return to_execution(row) if row else None

    def list_executions(
        self,
        flow_id: str,
        *,
        status: ExecutionStatus | None = None,
        lead_id: str | None = None,
        version_id: str | None = None,
        limit: int = 100,
    ) -> list[FlowExecution]:
        unknown_version = version_id is not None and not is_uuid(version_id)
        if not is_uuid(flow_id) or unknown_version or limit <= 0:
            return []
        E = self.executions
        query = E.select().where(E.flow_definition_id == flow_id)
        if status is not None:
            query = query.where(E.status == str(status))
        if lead_id is not None:
            query = query.where(E.lead_id == lead_id)
        if version_id is not None:
            query = query.where(E.flow_version_id == version_id)
        query = query.order_by(E.created_at.desc(), E.id.desc()).limit(limit)
        return [to_execution(row) for row in query]

    def claim(
        self, execution_id: str, owner: str, lease_until: datetime, now: datetime
    ) -> FlowExecution | None:
        if not is_uuid(execution_id):
            return None
        if self._statements is not None:
            return self._statements.claim(execution_id, owner, lease_until, now)
        E = self.progress
        query = E.update(
            {E.lease_owner: owner, E.lease_expires_at: lease_until, E.revision: E.revision + 1}
        ).where((E.id == execution_id) & E.status.in_(UNFINISHED) & self._not_held(now, E))
        row = self._update_returning(E, query, E.id == execution_id)
        return to_execution(row) if row else None

    def renew(self, execution_id: str, owner: str, lease_until: datetime) -> bool:
        if not is_uuid(execution_id):
            return False
        E = self.progress
        query = E.update({E.lease_expires_at: lease_until}).where(
            (E.id == execution_id) & (E.lease_owner == owner)
        )
        return query.execute() > 0

    def save(self, execution: FlowExecution, owner: str, *, release: bool) -> FlowExecution | None:
        if not is_uuid(execution.id):
            return None
        if self._statements is not None:
            return self._statements.save(execution, owner, release=release)
        E = self.progress
        changes: dict[Any, Any] = {
            E.status: str(execution.status),
            E.logs: execution.logs,
            E.result: execution.result,
            E.error_message: execution.error_message,
            E.started_at: execution.started_at,
            E.finished_at: execution.finished_at,
            E.next_step: execution.next_step,
            E.resume_at: execution.resume_at,
        }
        if release:
            changes.update({E.lease_owner: None, E.lease_expires_at: None})
        query = E.update(changes).where(
            (E.id == execution.id) & (E.lease_owner == owner) & (E.revision == execution.revision)
        )
        row = self._update_returning(E, query, E.id == execution.id)
        return to_execution(row) if row else None

    def request_cancel(self, execution_id: str, now: datetime) -> FlowExecution | None:
        if not is_uuid(execution_id):
            return None
        E = self.executions
        held = self._held(now)
        cancelled = E.status.to_value(str(ExecutionStatus.CANCELLED))
        query = E.update(
            {
                E.status: peewee.Case(None, [(held, E.status)], cancelled),
                E.finished_at: peewee.Case(
                    None, [(held, E.finished_at)], E.finished_at.to_value(now)
                ),
                E.lease_owner: peewee.Case(None, [(held, E.lease_owner)]),
                E.lease_expires_at: peewee.Case(None, [(held, E.lease_expires_at)]),
                E.cancel_requested: True,
            }
        ).where((E.id == execution_id) & E.status.in_(UNFINISHED))
        row = self._update_returning(E, query, E.id == execution_id)
        if row is None:  # unknown, or already finished: as it is
            row = E.get_or_none(E.id == execution_id)
        return to_execution(row) if row else None

    def due_executions(self, due_by: datetime, now: datetime, limit: int) -> list[str]:
        if limit <= 0:
            return []
        E = self.executions
        query = (
            E.select(E.id)
            .where(E.status.in_(UNFINISHED) & (E.resume_at <= due_by) & self._not_held(now))
            .order_by(E.resume_at, E.created_at, E.id)
            .limit(limit)
        )
        return [row.id for row in query]

    # -- helpers --------------------------------------------------------------------------

    def _write(self) -> Any:
        """A write transaction; on SQLite it takes the write lock at once (no upgrade later)."""
        return self._db.atomic("IMMEDIATE") if self._sqlite else self._db.atomic()

    def _lock_definition(self, flow_id: str) -> bool:
        """Hold the definition row until the transaction ends; False when there is none."""
        D = self.definitions
        query = D.select(D.id).where(D.id == flow_id)
        if not self._sqlite:
            query = query.for_update()
        return query.first() is not None

    def _insert_next_version(
        self, flow_id: str, steps: list[dict[str, Any]], change_notes: str, created_by: str
    ) -> FlowVersion:
        if not is_uuid(flow_id):
            raise NotFound(f"no flow {flow_id}")
        V = self.versions
        with self._write():
            if not self._lock_definition(flow_id):
                raise NotFound(f"no flow {flow_id}")
            highest = (
                V.select(peewee.fn.MAX(V.version_number))
                .where(V.flow_definition_id == flow_id)
                .scalar()
            )
            version = FlowVersion(
                id=new_id(),
                flow_definition_id=flow_id,
                version_number=(highest or 0) + 1,
                steps=steps,
                created_by=created_by,
                change_notes=change_notes,
                created_at=utcnow(),
            )
            V.insert(
                id=version.id,
                flow_definition_id=flow_id,
                version_number=version.version_number,
                steps=steps,
                status=str(version.status),
                created_by=created_by,
                change_notes=change_notes,
                created_at=version.created_at,
            ).execute()
        return version

    def _version_key(self, flow_id: str, version_number: int) -> Any:
        V = self.versions
        return (V.flow_definition_id == flow_id) & (V.version_number == version_number)

    def _held(self, now: datetime) -> Any:
        E = self.executions
        return (
            E.lease_owner.is_null(False)
            & E.lease_expires_at.is_null(False)
            & (E.lease_expires_at > now)
        )

    def _not_held(self, now: datetime, model: type[peewee.Model] | None = None) -> Any:
        E = model or self.executions
        return E.lease_owner.is_null() | E.lease_expires_at.is_null() | (E.lease_expires_at <= now)

    def _update_returning(self, model: type[peewee.Model], update: Any, key: Any) -> Any | None:
        """Run a conditional UPDATE of at most one row; the row as it is now, or None
        when nothing matched (RETURNING, or on older SQLite a re-read in the same transaction)."""
        if self._db.returning_clause:
            # Read to the end: only then does SQLite end the statement (and its write).
            rows = list(update.returning(model).execute())
            return rows[0] if rows else None
        with self._write():
            return model.get_or_none(key) if update.execute() else None
