"""The store's repositories on peewee models (PostgreSQL and SQLite alike)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

import peewee
from playhouse.pool import MaxConnectionsExceeded

from codeactions_core.errors import Conflict, InvalidInput, StoreError
from codeactions_core.model import (
    Authorization,
    Code,
    CodeChanges,
    CodeLib,
    CodeLog,
    CodeRun,
    CodeType,
    LogType,
    NewCode,
    Page,
    Project,
    Role,
    RunStatus,
    UserPermission,
    utcnow,
)
from codeactions_core.store import NewRun
from codeactions_sql.fields import is_uuid
from codeactions_sql.statements import RunStatements

T = TypeVar("T")


def database_errors_as_store_errors(cls: type[T]) -> type[T]:
    """Wrap every public method so driver errors surface as domain errors."""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except peewee.IntegrityError as exc:
                raise Conflict(f"conflicts with a stored row: {first_line(exc)}") from exc
            except MaxConnectionsExceeded as exc:  # a ValueError, but no fault of the input
                raise StoreError(f"database unavailable: {first_line(exc)}") from exc
            except (peewee.DataError, ValueError) as exc:  # e.g. psycopg2 refusing a NUL character
                raise InvalidInput(f"value rejected by the database: {first_line(exc)}") from exc
            except (peewee.OperationalError, peewee.InterfaceError) as exc:
                raise StoreError(f"database unavailable: {first_line(exc)}") from exc

        return wrapper

    for name, member in list(vars(cls).items()):
        if callable(member) and not name.startswith("_"):
            setattr(cls, name, wrap(member))
    return cls


UNFINISHED = (str(RunStatus.QUEUED), str(RunStatus.STARTED))


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def new_id() -> str:
    return str(uuid.uuid4())


def find_by_id(model: type[peewee.Model], entity_id: str, *, legacy: bool = True) -> Any | None:
    """A row by UUID, or by the MongoDB ObjectId it had before the PostgreSQL migration."""
    if is_uuid(entity_id):
        return model.get_or_none(model.id == entity_id)
    if legacy and entity_id and len(entity_id) <= 64:
        return model.get_or_none(model.mongo_object_id == entity_id)
    return None


def paginate(query: peewee.ModelSelect, page: int, per_page: int, convert: Callable) -> Page:
    total = query.order_by().count()
    rows = query.paginate(page, per_page)
    return Page(items=[convert(row) for row in rows], total=total, page=page, per_page=per_page)


def delete_batch(model: type[peewee.Model], cutoff: datetime, limit: int) -> int:
    oldest = model.select(model.id).where(model.created_at < cutoff).limit(limit)
    return model.delete().where(model.id.in_(oldest)).execute()


def to_code(row: Any) -> Code:
    return Code(
        id=row.id,
        name=row.name,
        type=CodeType(row.type),
        source=row.source,
        language=row.language,
        url=row.url or "",
        project_uuid=row.project_uuid,
        timeout=row.timeout or 60,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )


def to_run(row: Any) -> CodeRun:
    return CodeRun(
        id=row.id,
        code_id=row.code_id,
        status=RunStatus(row.status),
        result=row.result or "",
        extra=row.extra,  # JSON null the old service stored stays null
        params=row.params,
        body=row.body or "",
        headers=row.headers,
        created_at=row.created_at,
        updated_at=row.updated_at,
        mongo_object_id=row.mongo_object_id,
        code_mongo_id=row.code_mongo_id,
        version=row.code_version,
    )


def to_log(row: Any) -> CodeLog:
    return CodeLog(
        id=row.id,
        run_id=row.run_id,
        code_id=row.code_id,
        type=LogType(row.type),
        content=row.content,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def to_permission(row: Any) -> UserPermission:
    return UserPermission(
        id=row.id,
        project_uuid=row.project_uuid,
        email=row.email,
        role=Role(row.role),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def to_project(row: Any) -> Project:
    return Project(
        id=row.id,
        uuid=row.uuid,
        name=row.name,
        authorizations=[
            Authorization(
                user_email=item.get("user_email", ""), role=Role(int(item.get("role", 1)))
            )
            for item in (row.authorizations or [])
            if isinstance(item, dict)
        ],
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def to_lib(row: Any) -> CodeLib:
    return CodeLib(
        id=row.id,
        name=row.name,
        language=row.language,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@database_errors_as_store_errors
class SqlCodes:
    def __init__(self, model: type[peewee.Model], statements: RunStatements) -> None:
        self.model = model
        self._statements = statements

    def create(self, new: NewCode) -> Code:
        now = utcnow()
        row = self.model.create(
            id=new_id(),
            name=new.name,
            type=str(new.type),
            source=new.source,
            language=new.language,
            url=new.url or None,
            project_uuid=new.project_uuid,
            timeout=new.timeout,
            created_at=now,
            updated_at=now,
        )
        return to_code(row)

    def get(self, code_id: str) -> Code | None:
        if is_uuid(code_id):
            return self._statements.code(code_id)
        row = find_by_id(self.model, code_id)  # the MongoDB id of a migrated code
        return to_code(row) if row else None

    def list_by_project(self, project_uuid: str, code_type: CodeType | None = None) -> list[Code]:
        query = self.model.select().where(self.model.project_uuid == project_uuid)
        if code_type is not None:
            query = query.where(self.model.type == str(code_type))
        return [to_code(row) for row in query.order_by(self.model.created_at.desc())]

    def sources(self, language: str) -> Iterator[str]:
        query = self.model.select(self.model.source).where(self.model.language == language)
        for row in query.order_by(self.model.created_at).iterator():
            yield row.source or ""

    def update(self, code_id: str, changes: CodeChanges) -> Code | None:
        row = find_by_id(self.model, code_id)
        if row is None:
            return None
        code = changes.apply(to_code(row))
        code.updated_at = utcnow()
        self.model.update(
            name=code.name,
            type=str(code.type),
            source=code.source,
            language=code.language,
            url=code.url or None,
            timeout=code.timeout,
            updated_at=code.updated_at,
        ).where(self.model.id == row.id).execute()
        return code

    def delete(self, code_id: str) -> bool:
        row = find_by_id(self.model, code_id)
        if row is None:
            return False
        return self.model.delete().where(self.model.id == row.id).execute() > 0


@database_errors_as_store_errors
class SqlRuns:
    def __init__(self, model: type[peewee.Model], statements: RunStatements) -> None:
        self.model = model
        self._statements = statements

    def create(self, new: NewRun) -> CodeRun:
        now = utcnow()
        run = CodeRun(
            id=new_id(),
            code_id=new.code_id,
            status=new.status,
            params=new.params,
            body=new.body,
            headers=new.headers,
            result=new.result,
            created_at=now,
            updated_at=now,
            code_mongo_id=new.code_mongo_id,
            version=new.version,
        )
        self._statements.insert_run(run, new.owner, new.lease_expires_at)
        return run

    def get(self, run_id: str) -> CodeRun | None:
        row = find_by_id(self.model, run_id)
        return to_run(row) if row else None

    def update(
        self,
        run_id: str,
        *,
        status: RunStatus,
        result: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> CodeRun | None:
        if not is_uuid(run_id):
            return None
        return self._statements.finish_run(run_id, status, result, extra, utcnow())

    def list_by_code(
        self,
        code_id: str,
        *,
        after: datetime | None = None,
        before: datetime | None = None,
        limit: int = 1000,
    ) -> list[CodeRun]:
        if not is_uuid(code_id):
            return []
        query = self.model.select().where(self.model.code_id == code_id)
        if after is not None:
            query = query.where(self.model.created_at >= after)  # inclusive, as they were
        if before is not None:
            query = query.where(self.model.created_at <= before)
        query = query.order_by(self.model.created_at.desc(), self.model.id.desc()).limit(limit)
        return [to_run(row) for row in query]

    def delete_older_than(self, cutoff: datetime, limit: int) -> int:
        return delete_batch(self.model, cutoff, limit)

    def fail_abandoned(self, last_touched_before: datetime, reason: str) -> int:
        unfinished = (str(RunStatus.QUEUED), str(RunStatus.STARTED))
        return (
            self.model.update(status=str(RunStatus.FAILED), result=reason, updated_at=utcnow())
            .where(
                self.model.status.in_(unfinished)
                & (self.model.updated_at < last_touched_before)
                & (
                    (self.model.status != str(RunStatus.QUEUED))
                    | self.model.id.not_in(HELD_BY_BROKER)
                )
            )
            .execute()
        )

    def restore(self, run: CodeRun) -> bool:
        if not is_uuid(run.id) or self.model.get_or_none(self.model.id == run.id) is not None:
            return False
        self._statements.insert_run(run)
        return True

    def renew_leases(self, owner: str, until: datetime) -> int:
        return (
            self.model.update(lease_expires_at=until)
            .where(self.model.status.in_(UNFINISHED) & (self.model.owner == owner))
            .execute()
        )

    def fail_expired_leases(self, now: datetime, reason: str) -> int:
        return self._fail(
            self.model.owner.is_null(False) & (self.model.lease_expires_at < now), reason
        )

    def fail_owned(self, owner: str, reason: str, *, prefix: bool = False) -> int:
        if prefix:
            head = peewee.fn.substr(self.model.owner, 1, len(owner))  # exact, unlike LIKE
            return self._fail(self.model.owner.is_null(False) & (head == owner), reason)
        return self._fail(self.model.owner == owner, reason)

    def _fail(self, condition: Any, reason: str) -> int:
        return (
            self.model.update(status=str(RunStatus.FAILED), result=reason, updated_at=utcnow())
            .where(self.model.status.in_(UNFINISHED) & condition)
            .execute()
        )


HELD_BY_BROKER = peewee.SQL("(SELECT run_id FROM async_runs WHERE via = 'broker')")
"""Async runs waiting in RabbitMQ for a worker (migration 000014): queued, not abandoned."""


@database_errors_as_store_errors
class SqlLogs:
    """The database log store (the default one)."""

    def __init__(self, model: type[peewee.Model], statements: RunStatements) -> None:
        self.model = model
        self._statements = statements

    def add_many(self, logs: Sequence[CodeLog]) -> None:
        if logs:
            self._statements.insert_logs(
                logs, [log.id if is_uuid(log.id) else new_id() for log in logs]
            )

    def get(self, log_id: str) -> CodeLog | None:
        row = find_by_id(self.model, log_id)
        return to_log(row) if row else None

    def list_by_run(self, run: CodeRun, *, page: int, per_page: int) -> Page:
        run_id = run.id
        if not is_uuid(run_id):
            return Page(items=[], total=0, page=page, per_page=per_page)
        query = (
            self.model.select()
            .where(self.model.run_id == run_id)
            .order_by(self.model.created_at, self.model.seq)
        )
        return paginate(query, page, per_page, to_log)

    def list_by_code(self, code_id: str, *, page: int, per_page: int) -> Page:
        if not is_uuid(code_id):
            return Page(items=[], total=0, page=page, per_page=per_page)
        query = (
            self.model.select()
            .where(self.model.code_id == code_id)
            .order_by(self.model.created_at.desc(), self.model.seq.desc())
        )
        return paginate(query, page, per_page, to_log)

    def delete_older_than(self, cutoff: datetime, limit: int) -> int:
        return delete_batch(self.model, cutoff, limit)


@database_errors_as_store_errors
class SqlProjects:
    def __init__(self, model: type[peewee.Model]) -> None:
        self.model = model

    def get(self, project_uuid: str) -> Project | None:
        row = self.model.get_or_none(self.model.uuid == project_uuid)
        return to_project(row) if row else None

    def upsert(
        self, project_uuid: str, name: str, authorizations: Sequence[Authorization]
    ) -> Project:
        now = utcnow()
        stored = [{"user_email": a.user_email, "role": int(a.role)} for a in authorizations]
        self.model.insert(
            id=new_id(),
            uuid=project_uuid,
            name=name,
            authorizations=stored,
            created_at=now,
            updated_at=now,
        ).on_conflict(
            conflict_target=[self.model.uuid],
            update={
                self.model.name: name,
                self.model.authorizations: stored,
                self.model.updated_at: now,
            },
        ).execute()
        return self.get(project_uuid)


@database_errors_as_store_errors
class SqlPermissions:
    def __init__(self, model: type[peewee.Model]) -> None:
        self.model = model

    def get(self, project_uuid: str, email: str) -> UserPermission | None:
        row = self.model.get_or_none(
            (self.model.project_uuid == project_uuid) & (self.model.email == email)
        )
        return to_permission(row) if row else None

    def list_by_project(self, project_uuid: str) -> list[UserPermission]:
        query = self.model.select().where(self.model.project_uuid == project_uuid)
        return [to_permission(row) for row in query.order_by(self.model.email)]

    def upsert(self, project_uuid: str, email: str, role: Role) -> UserPermission:
        now = utcnow()
        self.model.insert(
            id=new_id(),
            project_uuid=project_uuid,
            email=email,
            role=int(role),
            created_at=now,
            updated_at=now,
        ).on_conflict(
            conflict_target=[self.model.project_uuid, self.model.email],
            update={self.model.role: int(role), self.model.updated_at: now},
        ).execute()
        return self.get(project_uuid, email)

    def delete(self, project_uuid: str, email: str) -> bool:
        deleted = self.model.delete().where(
            (self.model.project_uuid == project_uuid) & (self.model.email == email)
        )
        return deleted.execute() > 0


@database_errors_as_store_errors
class SqlLibs:
    def __init__(self, model: type[peewee.Model]) -> None:
        self.model = model

    def add(self, name: str, language: str) -> CodeLib:
        now = utcnow()
        self.model.insert(
            id=new_id(), name=name, language=language, created_at=now, updated_at=now
        ).on_conflict_ignore().execute()
        row = self.model.get((self.model.name == name) & (self.model.language == language))
        return to_lib(row)

    def list(self, language: str | None = None) -> list[CodeLib]:
        query = self.model.select()
        if language is not None:
            query = query.where(self.model.language == language)
        return [to_lib(row) for row in query.order_by(self.model.name)]
