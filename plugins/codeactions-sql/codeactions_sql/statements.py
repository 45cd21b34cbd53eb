"""The statements every run executes, written once as SQL.

Building a query with peewee costs more Python time than the database needs
to run it; on the path of every run (fetch the code, insert the run, finish it,
store its logs) the SQL is prepared once per store and only bound at each call.
Everything else goes through the peewee models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import peewee

from codeactions_core.model import Code, CodeLog, CodeRun, CodeType, RunStatus
from codeactions_sql.fields import json_from_db, json_to_db, time_from_db, time_to_db

CODE_COLUMNS = (
    "id, name, type, source, language, url, project_uuid, timeout, created_at, updated_at, version"
)
RUN_COLUMNS = (
    "id, code_id, status, result, extra, params, body, headers, created_at, updated_at, "
    "mongo_object_id, code_mongo_id, code_version"
)
LOG_COLUMNS = "id, run_id, code_id, seq, type, content, created_at, updated_at"


class RunStatements:
    """Codes are read through ``database``; runs and logs are written through ``history``,
    except a run's final write, which goes through ``database``: when ``history`` commits
    asynchronously, that one synchronous commit also flushes every earlier write of the run
    (the log is flushed in order), so a run a client got its answer for survives a crash."""

    def __init__(self, database: peewee.Database, history: peewee.Database) -> None:
        self._reads = database
        self._db = history
        self._final = database
        self._sqlite = isinstance(database, peewee.SqliteDatabase)
        self._returning = bool(history.returning_clause)
        p = database.param
        self._code_by_id = f"SELECT {CODE_COLUMNS} FROM codes WHERE id = {p}"
        self._insert_run = (
            f"INSERT INTO coderuns ({RUN_COLUMNS}, owner, lease_expires_at) "
            f"VALUES ({', '.join([p] * 15)})"
        )
        self._finish_run = (
            f"UPDATE coderuns SET status = {p}, result = COALESCE({p}, result), "
            f"extra = COALESCE({p}, extra), updated_at = {p} WHERE id = {p}"
        )
        self._run_by_id = f"SELECT {RUN_COLUMNS} FROM coderuns WHERE id = {p}"
        self._log_row = f"({', '.join([p] * 8)})"

    def code(self, code_id: str) -> Code | None:
        row = self._reads.execute_sql(self._code_by_id, (code_id,)).fetchone()
        if row is None:
            return None
        return Code(
            id=str(row[0]),
            name=row[1],
            type=CodeType(row[2]),
            source=row[3],
            language=row[4],
            url=row[5] or "",
            project_uuid=row[6],
            timeout=row[7] or 60,
            created_at=time_from_db(row[8]),
            updated_at=time_from_db(row[9]),
            version=row[10],
        )

    def insert_run(self, run: CodeRun, owner: str | None = None, lease: Any = None) -> None:
        self._db.execute_sql(
            self._insert_run,
            (
                run.id,
                run.code_id,
                str(run.status),
                run.result,
                json_to_db(run.extra),
                json_to_db(run.params),
                run.body,
                json_to_db(run.headers),
                self._time(run.created_at),
                self._time(run.updated_at),
                run.mongo_object_id,
                run.code_mongo_id,
                run.version,
                owner,
                None if lease is None else self._time(lease),
            ),
        )

    def finish_run(
        self, run_id: str, status: RunStatus, result: str | None, extra: Any, now: Any
    ) -> CodeRun | None:
        """Set status (and result and extra when given); the run as stored now."""
        values = (str(status), result, json_to_db(extra), self._time(now), run_id)
        db = self._final if status.terminal else self._db
        if self._returning:
            row = db.execute_sql(f"{self._finish_run} RETURNING {RUN_COLUMNS}", values).fetchone()
        else:
            cursor = db.execute_sql(self._finish_run, values)
            row = db.execute_sql(self._run_by_id, (run_id,)).fetchone() if cursor.rowcount else None
        return run_from_row(row) if row else None

    def insert_logs(self, logs: Sequence[CodeLog], ids: Sequence[str]) -> None:
        values: list[Any] = []
        for position, (log, log_id) in enumerate(zip(logs, ids)):
            values += [
                log_id,
                log.run_id,
                log.code_id,
                position,
                str(log.type),
                log.content,
                self._time(log.created_at),
                self._time(log.updated_at),
            ]
        rows = ", ".join([self._log_row] * len(logs))
        with self._db.atomic():
            self._db.execute_sql(f"INSERT INTO codelogs ({LOG_COLUMNS}) VALUES {rows}", values)

    def _time(self, moment: Any) -> Any:
        return time_to_db(moment, self._sqlite)


def run_from_row(row: Sequence[Any]) -> CodeRun:
    """A run from a row of RUN_COLUMNS."""
    return CodeRun(
        id=str(row[0]),
        code_id=str(row[1]),
        status=RunStatus(row[2]),
        result=row[3] or "",
        extra=json_from_db(row[4]),
        params=json_from_db(row[5]),
        body=row[6] or "",
        headers=json_from_db(row[7]),
        created_at=time_from_db(row[8]),
        updated_at=time_from_db(row[9]),
        mongo_object_id=row[10],
        code_mongo_id=row[11],
        version=row[12],
    )
