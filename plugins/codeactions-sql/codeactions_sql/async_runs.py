"""Async run records and project signing keys (migration 000014), in plain SQL.

Claiming an attempt is one ``UPDATE ... WHERE attempts < cap RETURNING``, so two
deliveries of one run can never both count as the same attempt.
"""

from __future__ import annotations

from typing import Any

import peewee

from codeactions_core.model import utcnow
from codeactions_core.store import AsyncRun, SigningKey
from codeactions_sql.fields import is_uuid, time_from_db, time_to_db
from codeactions_sql.repositories import database_errors_as_store_errors

COLUMNS = (
    "run_id, project_uuid, callback_url, via, attempts, redelivered, worker, callback_state, "
    "callback_attempts, callback_error, created_at, updated_at"
)


@database_errors_as_store_errors
class SqlAsyncRuns:
    def __init__(self, database: peewee.Database) -> None:
        self._db = database
        self._sqlite = isinstance(database, peewee.SqliteDatabase)
        self._p = database.param

    def _time(self, moment: Any) -> Any:
        return time_to_db(moment, self._sqlite)

    def _one(self, sql: str, params: tuple) -> AsyncRun | None:
        row = self._db.execute_sql(sql, params).fetchone()
        return None if row is None else record(row)

    def create(self, new: AsyncRun) -> AsyncRun:
        p, now = self._p, utcnow()
        with self._db.atomic():
            self._db.execute_sql(
                f"INSERT INTO async_runs ({COLUMNS}) VALUES ({', '.join([p] * 12)})",
                (
                    new.run_id,
                    new.project_uuid,
                    new.callback_url,
                    new.via,
                    new.attempts,
                    new.redelivered,
                    new.worker,
                    new.callback_state,
                    new.callback_attempts,
                    new.callback_error,
                    self._time(now),
                    self._time(now),
                ),
            )
        found = self.get(new.run_id)
        assert found is not None
        return found

    def get(self, run_id: str) -> AsyncRun | None:
        if not is_uuid(run_id):
            return None
        return self._one(f"SELECT {COLUMNS} FROM async_runs WHERE run_id = {self._p}", (run_id,))

    def claim(
        self, run_id: str, worker: str, *, redelivered: bool, max_attempts: int
    ) -> AsyncRun | None:
        if not is_uuid(run_id):
            return None
        p = self._p
        with self._db.atomic():
            claimed = self._one(
                f"UPDATE async_runs SET attempts = attempts + 1, worker = {p}, "
                f"redelivered = (redelivered OR {p}), updated_at = {p} "
                f"WHERE run_id = {p} AND attempts < {p} RETURNING {COLUMNS}",
                (worker, redelivered, self._time(utcnow()), run_id, max_attempts),
            )
        return claimed or self.get(run_id)

    def set_callback(
        self, run_id: str, state: str, attempts: int, error: str = ""
    ) -> AsyncRun | None:
        if not is_uuid(run_id):
            return None
        p = self._p
        with self._db.atomic():
            return self._one(
                f"UPDATE async_runs SET callback_state = {p}, callback_attempts = {p}, "
                f"callback_error = {p}, updated_at = {p} WHERE run_id = {p} RETURNING {COLUMNS}",
                (state, attempts, error, self._time(utcnow()), run_id),
            )

    def signing_key(self, project_uuid: str) -> SigningKey | None:
        row = self._db.execute_sql(
            "SELECT project_uuid, signing_key, created_at FROM project_signing_keys "
            f"WHERE project_uuid = {self._p}",
            (project_uuid,),
        ).fetchone()
        return None if row is None else SigningKey(row[0], row[1], time_from_db(row[2]))

    def rotate_signing_key(self, project_uuid: str, key: str) -> SigningKey:
        p = self._p
        with self._db.atomic():
            self._db.execute_sql(
                "INSERT INTO project_signing_keys (project_uuid, signing_key, created_at) "
                f"VALUES ({p}, {p}, {p}) ON CONFLICT (project_uuid) DO UPDATE SET "
                "signing_key = excluded.signing_key, created_at = excluded.created_at",
                (project_uuid, key, self._time(utcnow())),
            )
        found = self.signing_key(project_uuid)
        assert found is not None
        return found


def record(row: tuple) -> AsyncRun:
    return AsyncRun(
        run_id=str(row[0]),
        project_uuid=row[1],
        callback_url=row[2],
        via=row[3],
        attempts=int(row[4]),
        redelivered=bool(row[5]),
        worker=row[6],
        callback_state=row[7],
        callback_attempts=int(row[8]),
        callback_error=row[9],
        created_at=time_from_db(row[10]),
        updated_at=time_from_db(row[11]),  # type: ignore[arg-type]
    )
