"""Code versions on PostgreSQL and SQLite: a version and the code's program change in
one transaction (the code's row locked on PostgreSQL, an immediate transaction on SQLite)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import peewee

from codeactions_core.model import CodeVersion, NewCodeVersion, utcnow
from codeactions_sql.fields import is_uuid, time_from_db
from codeactions_sql.repositories import database_errors_as_store_errors, new_id


def to_version(row: Any) -> CodeVersion:
    return CodeVersion(
        code_id=str(row.code_id),
        number=row.number,
        source=row.source,
        language=row.language,
        timeout=row.timeout,
        sha256=row.sha256,
        author=row.author or "",
        note=row.note or "",
        created_at=row.created_at,
    )


@database_errors_as_store_errors
class SqlVersions:
    def __init__(self, codes: type[peewee.Model], versions: type[peewee.Model]) -> None:
        self.codes = codes
        self.model = versions
        self._db: peewee.Database = versions._meta.database
        p = self._db.param
        self._version_by_number = (
            "SELECT code_id, number, source, language, timeout, sha256, author, note, created_at "
            f"FROM code_versions WHERE code_id = {p} AND number = {p}"
        )

    def commit(self, code_id: str, new: NewCodeVersion) -> CodeVersion | None:
        if not is_uuid(code_id):
            return None
        with self._writing():
            code = self._locked_code(code_id)
            if code is None:
                return None
            number = self._last_number(code_id) + 1
            # a new code's first version is as old as the code: its updated_at stays
            version = self._insert(
                code_id, number, new, created_at=code.updated_at if number == 1 else None
            )
            self.codes.update(
                source=new.source,
                language=new.language,
                timeout=new.timeout,
                version=number,
                updated_at=version.created_at,
            ).where(self.codes.id == code_id).execute()
            return version

    def ensure_first(self, code_id: str, new: NewCodeVersion) -> CodeVersion | None:
        if not is_uuid(code_id):
            return None
        with self._writing():
            code = self._locked_code(code_id)
            if code is None:
                return None
            last = self._last_number(code_id)
            if last == 0:
                self._insert(code_id, 1, new, created_at=code.updated_at)
                last = 1
            if code.version is None:
                self.codes.update(version=last).where(self.codes.id == code_id).execute()
            return self.get(code_id, code.version or last)

    def get(self, code_id: str, number: int) -> CodeVersion | None:
        """One version: prepared SQL, as a pinned run reads it (peewee's query building
        costs ten times the lookup)."""
        if not is_uuid(code_id):
            return None
        row = self._db.execute_sql(self._version_by_number, (code_id, number)).fetchone()
        if row is None:
            return None
        return CodeVersion(
            code_id=str(row[0]),
            number=row[1],
            source=row[2],
            language=row[3],
            timeout=row[4],
            sha256=row[5],
            author=row[6] or "",
            note=row[7] or "",
            created_at=time_from_db(row[8]),
        )

    def list(self, code_id: str) -> list[CodeVersion]:
        if not is_uuid(code_id):
            return []
        query = self.model.select().where(self.model.code_id == code_id)
        return [to_version(row) for row in query.order_by(self.model.number.desc())]

    def delete_for_code(self, code_id: str) -> int:
        if not is_uuid(code_id):
            return 0
        return self.model.delete().where(self.model.code_id == code_id).execute()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        if isinstance(self._db, peewee.SqliteDatabase):
            with self._db.atomic(lock_type="IMMEDIATE"):
                yield
        else:
            with self._db.atomic():
                yield

    def _locked_code(self, code_id: str) -> Any | None:
        query = self.codes.select(self.codes.id, self.codes.version, self.codes.updated_at)
        query = query.where(self.codes.id == code_id)
        if not isinstance(self._db, peewee.SqliteDatabase):
            query = query.for_update()
        return query.first()

    def _last_number(self, code_id: str) -> int:
        found = (
            self.model.select(peewee.fn.MAX(self.model.number))
            .where(self.model.code_id == code_id)
            .scalar()
        )
        return int(found or 0)

    def _insert(
        self, code_id: str, number: int, new: NewCodeVersion, created_at: Any = None
    ) -> CodeVersion:
        version = new.numbered(code_id, number, created_at or utcnow())
        self.model.create(
            id=new_id(),
            code_id=code_id,
            number=number,
            source=new.source,
            language=new.language,
            timeout=new.timeout,
            sha256=version.sha256,
            author=new.author,
            note=new.note,
            created_at=version.created_at,
        )
        return version
