"""The statements of a flow execution's life, written once as SQL.

Like ``statements.py`` for runs: building these with peewee costs more Python
time than the database needs to run them, and every execution makes one
insert, one claim and a save at every step boundary. A save reads back only
the columns it does not set (logs and result can be large). Needs
``UPDATE ... RETURNING`` (PostgreSQL, SQLite 3.35+).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import peewee

from codeactions_core.flows.model import ExecutionStatus, FlowExecution, NewExecution
from codeactions_core.model import utcnow
from codeactions_sql.fields import is_uuid, json_from_db, json_to_db, time_from_db, time_to_db

WRITTEN = (
    "status",
    "logs",
    "result",
    "error_message",
    "started_at",
    "finished_at",
    "next_step",
    "resume_at",
)
KEPT = (
    "id",
    "flow_definition_id",
    "flow_version_id",
    "lead_id",
    "executed_by",
    "context",
    "created_at",
    "revision",
    "lease_owner",
    "lease_expires_at",
    "cancel_requested",
)
COLUMNS = KEPT + WRITTEN
UNFINISHED = f"('{ExecutionStatus.PENDING}', '{ExecutionStatus.RUNNING}')"
POSTGRES_TYPES = {
    "id": "uuid",
    "flow_definition_id": "uuid",
    "flow_version_id": "uuid",
    "lead_id": "text",
    "executed_by": "text",
    "context": "jsonb",
    "created_at": "timestamptz",
    "revision": "bigint",
    "lease_owner": "text",
    "lease_expires_at": "timestamptz",
    "cancel_requested": "boolean",
    "status": "varchar",
    "logs": "jsonb",
    "result": "jsonb",
    "error_message": "text",
    "started_at": "timestamptz",
    "finished_at": "timestamptz",
    "next_step": "integer",
    "resume_at": "timestamptz",
}
"""Types of the values an INSERT ... SELECT passes: PostgreSQL reads untyped ones as text."""


class ExecutionStatements:
    """Creates executions through ``database``; claims and saves through ``progress``."""

    def __init__(self, database: peewee.Database, progress: peewee.Database) -> None:
        self._db, self._progress = database, progress
        self._sqlite = isinstance(database, peewee.SqliteDatabase)
        p = database.param
        given = [
            p if self._sqlite else f"CAST({p} AS {POSTGRES_TYPES[column]})" for column in COLUMNS
        ]
        self._create = (
            f"INSERT INTO flow_executions ({', '.join(COLUMNS)}) "
            f"SELECT {given[0]}, v.flow_definition_id, v.id, {', '.join(given[3:])} "
            f"FROM flow_versions v WHERE v.id = {p} AND v.flow_definition_id = {p} "
            f"RETURNING flow_definition_id, flow_version_id"
        )
        self._claim = (
            f"UPDATE flow_executions SET lease_owner = {p}, lease_expires_at = {p}, "
            f"revision = revision + 1 "
            f"WHERE id = {p} AND status IN {UNFINISHED} "
            f"AND (lease_owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at <= {p}) "
            f"RETURNING {', '.join(COLUMNS)}"
        )
        sets = ", ".join(f"{column} = {p}" for column in WRITTEN)
        fence = (
            f"WHERE id = {p} AND lease_owner = {p} AND revision = {p} RETURNING {', '.join(KEPT)}"
        )
        self._keep = f"UPDATE flow_executions SET {sets} {fence}"
        self._release = (
            f"UPDATE flow_executions SET {sets}, lease_owner = NULL, lease_expires_at = NULL "
            f"{fence}"
        )

    def create(self, new: NewExecution) -> FlowExecution | None:
        """A pending execution, due now; None unless the version belongs to the flow."""
        if not (is_uuid(new.flow_version_id) and is_uuid(new.flow_definition_id)):
            return None
        now = utcnow()
        execution = FlowExecution(
            id=str(uuid.uuid4()),
            flow_definition_id="",
            flow_version_id="",
            lead_id=new.lead_id,
            context=new.context,
            executed_by=new.executed_by,
            created_at=now,
            resume_at=now,
        )
        values = (
            execution.id,
            execution.lead_id,
            execution.executed_by,
            json_to_db(execution.context),
            self._time(now),
            0,
            None,
            None,
            False,
            *self._written(execution),
            canonical(new.flow_version_id),
            canonical(new.flow_definition_id),
        )
        rows = self._db.execute_sql(self._create, values).fetchall()
        if not rows:
            return None
        execution.flow_definition_id, execution.flow_version_id = str(rows[0][0]), str(rows[0][1])
        return execution

    def claim(
        self, execution_id: str, owner: str, lease_until: datetime, now: datetime
    ) -> FlowExecution | None:
        values = (owner, self._time(lease_until), execution_id, self._time(now))
        rows = self._progress.execute_sql(self._claim, values).fetchall()
        return from_columns(dict(zip(COLUMNS, rows[0]))) if rows else None

    def save(self, execution: FlowExecution, owner: str, *, release: bool) -> FlowExecution | None:
        """The execution as stored after the write; None when ``owner`` no longer holds it."""
        values = (*self._written(execution), execution.id, owner, execution.revision)
        # Read to the end: only then does SQLite end the statement (and its write).
        rows = self._progress.execute_sql(
            self._release if release else self._keep, values
        ).fetchall()
        if not rows:
            return None
        written = {column: getattr(execution, column) for column in WRITTEN}
        return from_columns({**dict(zip(KEPT, rows[0])), **written})

    def _written(self, execution: FlowExecution) -> tuple[Any, ...]:
        """Values of the WRITTEN columns, in order."""
        return (
            str(execution.status),
            json_to_db(execution.logs),
            json_to_db(execution.result),
            execution.error_message,
            self._time(execution.started_at),
            self._time(execution.finished_at),
            execution.next_step,
            self._time(execution.resume_at),
        )

    def _time(self, moment: datetime | None) -> Any:
        return None if moment is None else time_to_db(moment, self._sqlite)


def canonical(uuid_text: str) -> str:
    return str(uuid.UUID(uuid_text))


def from_columns(columns: dict[str, Any]) -> FlowExecution:
    """An execution from its columns as the database (or the engine) gives them."""
    logs, result, context = (json_from_db(columns[name]) for name in ("logs", "result", "context"))
    return FlowExecution(
        id=str(columns["id"]),
        flow_definition_id=str(columns["flow_definition_id"]),
        flow_version_id=str(columns["flow_version_id"]),
        status=ExecutionStatus(str(columns["status"])),
        lead_id=columns["lead_id"],
        logs=logs if isinstance(logs, list) else [],
        result=result if isinstance(result, dict) else {},
        error_message=columns["error_message"] or "",
        context=context if isinstance(context, dict) else {},
        executed_by=columns["executed_by"] or "",
        created_at=time_from_db(columns["created_at"]),
        started_at=time_from_db(columns["started_at"]),
        finished_at=time_from_db(columns["finished_at"]),
        next_step=columns["next_step"],
        revision=columns["revision"],
        lease_owner=columns["lease_owner"],
        lease_expires_at=time_from_db(columns["lease_expires_at"]),
        resume_at=time_from_db(columns["resume_at"]),
        cancel_requested=bool(columns["cancel_requested"]),
    )
