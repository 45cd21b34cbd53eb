"""What a storage backend provides. A plugin returns a :class:`Store` from the
``codeactions_store`` hook; ``codeactions_core.testing.store_contract`` is the
suite every implementation must pass.

Ids are strings. A repository answers ``None`` (or ``False``) for an id it does
not know, including strings that are not ids at all: it never raises for them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from codeactions_core.async_store import (  # re-exported: store plugins import them from here
    AsyncRun,  # noqa: F401
    AsyncRunRepository,
    CallbackState,  # noqa: F401
    SigningKey,  # noqa: F401
)
from codeactions_core.flows.store import FlowRepository
from codeactions_core.model import (
    Authorization,
    Code,
    CodeChanges,
    CodeLib,
    CodeLog,
    CodeRun,
    CodeType,
    CodeVersion,
    NewCode,
    NewCodeVersion,
    Page,
    Project,
    ProjectSecret,
    Role,
    RunStatus,
    UserPermission,
)
from codeactions_core.scheduling.store import ScheduleRepository


@dataclass
class NewRun:
    code_id: str
    status: RunStatus = RunStatus.QUEUED
    params: dict[str, Any] = field(default_factory=dict)
    body: str = ""
    headers: dict[str, list[str]] = field(default_factory=dict)
    result: str = ""
    """Only for a run recorded already finished (e.g. refused)."""
    code_mongo_id: str | None = None
    """The code's legacy MongoDB id when the run was asked for by it."""
    owner: str | None = None
    """The server process that runs it (its lease holder); None: nobody owns it yet (e.g. an
    async run waiting for a worker), so no lease rule fails it."""
    lease_expires_at: datetime | None = None
    """When the owner's claim lapses unless renewed (``RunRepository.renew_leases``)."""
    version: int | None = None
    """The number of the code version the run runs."""


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema stands against the migrations this code ships."""

    current: int
    latest: int
    dirty: bool = False

    @property
    def behind(self) -> bool:
        return self.current < self.latest


class CodeRepository(Protocol):
    def create(self, new: NewCode) -> Code: ...

    def get(self, code_id: str) -> Code | None:
        """A code by id; SQL stores also accept the legacy MongoDB id of migrated rows."""

    def list_by_project(self, project_uuid: str, code_type: CodeType | None = None) -> list[Code]:
        """A project's codes, newest first."""

    def update(self, code_id: str, changes: CodeChanges) -> Code | None: ...

    def delete(self, code_id: str) -> bool: ...

    def sources(self, language: str) -> Iterator[str]:
        """The source of every stored code of a language (``codeactions libs sync``)."""


class CodeVersionRepository(Protocol):
    """The immutable versions of each code's program (source, language, timeout).

    ``codeactions_core.testing.version_store_contract`` is the suite every store must pass.
    """

    def commit(self, code_id: str, new: NewCodeVersion) -> CodeVersion | None:
        """Record the code's next version (number = last + 1) and make it the code's
        program: its source, language, timeout and ``version`` change in the same step.
        None when the code does not exist. Concurrent commits get distinct numbers."""

    def ensure_first(self, code_id: str, new: NewCodeVersion) -> CodeVersion | None:
        """For a code stored before versions: record ``new`` as version 1 unless the code
        has versions already, and set the code's ``version`` where it has none; the
        code's current version, or None when the code does not exist. Idempotent."""

    def get(self, code_id: str, number: int) -> CodeVersion | None: ...

    def list(self, code_id: str) -> list[CodeVersion]:
        """A code's versions, newest first."""

    def delete_for_code(self, code_id: str) -> int:
        """Delete a (deleted) code's versions; how many."""


class RunRepository(Protocol):
    def create(self, new: NewRun) -> CodeRun: ...

    def get(self, run_id: str) -> CodeRun | None: ...

    def update(
        self,
        run_id: str,
        *,
        status: RunStatus,
        result: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> CodeRun | None:
        """Move a run to ``status``; ``None`` keeps result or extra as stored."""

    def list_by_code(
        self,
        code_id: str,
        *,
        after: datetime | None = None,
        before: datetime | None = None,
        limit: int = 1000,
    ) -> list[CodeRun]:
        """A code's runs created strictly after/before the bounds, newest first.

        Runs created in the same instant come in a stable order.
        """

    def delete_older_than(self, cutoff: datetime, limit: int) -> int:
        """Delete at most ``limit`` runs created before ``cutoff``; return how many."""

    def fail_abandoned(self, last_touched_before: datetime, reason: str) -> int:
        """Mark failed, with ``reason`` as result, every queued or started run not updated
        since ``last_touched_before`` (its server died mid-run); return how many."""

    def restore(self, run: CodeRun) -> bool:
        """Insert ``run`` as given, its id kept, unless a run with that id exists (a final
        write replayed from the outbox whose first write the database lost); True when
        inserted."""

    def renew_leases(self, owner: str, until: datetime) -> int:
        """Extend to ``until`` the lease of every queued or started run ``owner`` holds;
        return how many (one statement: a process renews all its runs at once)."""

    def fail_expired_leases(self, now: datetime, reason: str) -> int:
        """Mark failed, with ``reason``, every queued or started run that has an owner whose
        lease expired before ``now`` (its process died); return how many. Runs without an
        owner (not taken by any process yet) are left alone."""

    def fail_owned(self, owner: str, reason: str, *, prefix: bool = False) -> int:
        """Mark failed, with ``reason``, every queued or started run ``owner`` holds (with
        ``prefix``: every owner starting with it), whatever its lease; return how many."""


class LogStore(Protocol):
    """Where run logs live: the database by default, S3 through a plugin."""

    def add_many(self, logs: Sequence[CodeLog]) -> str | None:
        """Store the log lines of one run in one batch, keeping their order.

        Returns where they live when the store needs reminding to find them
        quickly (S3: the key prefix), or None; the core keeps it on the run as
        ``extra["logs_location"]``.
        """

    def get(self, log_id: str) -> CodeLog | None: ...

    def list_by_run(self, run: CodeRun, *, page: int, per_page: int) -> Page:
        """A run's logs in the order they were written. The run carries what a store
        may need to find them: its id, ``extra["logs_location"]`` (what add_many
        returned), its creation time (for logs of runs older than that)."""

    def list_by_code(self, code_id: str, *, page: int, per_page: int) -> Page:
        """A code's logs, newest first."""

    def delete_older_than(self, cutoff: datetime, limit: int) -> int:
        """Delete at most ``limit`` log lines created before ``cutoff``; return how many."""


class ProjectRepository(Protocol):
    def get(self, project_uuid: str) -> Project | None: ...

    def upsert(
        self, project_uuid: str, name: str, authorizations: Sequence[Authorization]
    ) -> Project:
        """Create the project or replace its name and authorizations."""


class PermissionRepository(Protocol):
    def get(self, project_uuid: str, email: str) -> UserPermission | None: ...

    def list_by_project(self, project_uuid: str) -> list[UserPermission]:
        """A project's permissions ordered by email."""

    def upsert(self, project_uuid: str, email: str, role: Role) -> UserPermission: ...

    def delete(self, project_uuid: str, email: str) -> bool: ...


class LibRepository(Protocol):
    def add(self, name: str, language: str) -> CodeLib:
        """Record a library; adding one already recorded returns the stored row."""

    def list(self, language: str | None = None) -> list[CodeLib]:
        """Recorded libraries ordered by name."""


class LockRepository(Protocol):
    """Named locks that expire, so that one scheduler replica at a time does a pass.

    ``codeactions_core.testing.lock_contract`` is the suite every implementation must pass.
    """

    def try_acquire(self, name: str, holder: str, ttl: timedelta) -> bool:
        """Take ``name`` for ``holder`` for ``ttl`` unless it is held and unexpired (even by
        ``holder``); one atomic step, so of racing callers exactly one gets True."""

    def release(self, name: str, holder: str) -> bool:
        """Free ``name`` when ``holder`` holds it; True when it did (never frees another's)."""


class SecretRepository(Protocol):
    """Project secrets, stored encrypted: the repository never sees a plaintext value."""

    def put(self, project_uuid: str, name: str, ciphertext: str) -> ProjectSecret:
        """Create the secret or replace its value (``created_at`` kept, ``updated_at`` now)."""

    def list_by_project(self, project_uuid: str) -> list[ProjectSecret]:
        """A project's secrets ordered by name."""

    def delete(self, project_uuid: str, name: str) -> bool: ...

    def all(self) -> Iterator[ProjectSecret]:
        """Every stored secret of every project (``codeactions secrets rotate``)."""

    def replace_ciphertext(self, project_uuid: str, name: str, old: str, new: str) -> bool:
        """Swap ``old`` for ``new`` only when the secret still holds ``old`` (a value put in
        the meantime wins); True when it did."""


@runtime_checkable
class Store(Protocol):
    """A storage backend: repositories plus its schema life cycle.

    Optional: ``directories``, a tuple of the local directories the store writes its files
    to (an embedded database's), whose free space ``/health/ready`` checks; a store on a
    server has none."""

    kind: str
    """Short name shown in logs and ``/health``: ``sqlite``, ``postgres``, ``mongodb``."""

    auto_migrate: bool
    """True when ``serve`` may apply pending migrations itself (embedded stores)."""

    codes: CodeRepository
    versions: CodeVersionRepository
    schedules: ScheduleRepository
    runs: RunRepository
    logs: LogStore
    projects: ProjectRepository
    permissions: PermissionRepository
    libs: LibRepository
    locks: LockRepository
    flows: FlowRepository
    secrets: SecretRepository
    async_runs: AsyncRunRepository
    """Async run records and callback signing keys (issue 15)."""

    def schema_status(self) -> SchemaStatus: ...

    def migrate(self, target: int | None = None) -> list[int]:
        """Apply pending migrations up to ``target`` (all when None); return their versions."""

    def force_version(self, version: int) -> None:
        """Record ``version`` as applied and clean, without running anything."""

    def ping(self) -> None:
        """Raise when the database cannot be reached."""

    def release(self) -> None:
        """Return this thread's connection to the pool (called after every request)."""

    def close(self) -> None: ...
