"""Running a code: one CodeRun per request, always left completed or failed."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from codeactions_core.errors import NotFound, Unavailable
from codeactions_core.execution.pool import QueueFull, RunPool, Ticket
from codeactions_core.execution.runtime import Job, Outcome, RunRequest, Runtime
from codeactions_core.execution.runtimes import Runtimes
from codeactions_core.model import (
    MAX_TIMEOUT,
    OBJECT_ID,
    Code,
    CodeRun,
    RunStatus,
    utcnow,
)
from codeactions_core.services.codes import CodeService
from codeactions_core.services.outbox import Outbox
from codeactions_core.services.run_caps import RunLimits, storable, storable_value
from codeactions_core.services.run_leases import SHUTTING_DOWN, RunLeases
from codeactions_core.services.run_records import RunRecords
from codeactions_core.services.secret_masking import mask_value
from codeactions_core.services.secrets import SecretService
from codeactions_core.store import LogStore, NewRun, RunRepository

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    code: Code
    run: CodeRun
    outcome: Outcome
    seconds: float


class RunObserver(Protocol):
    """Told about every finished run (metrics)."""

    def run_finished(
        self, project_uuid: str, code_id: str, *, failed: bool, timed_out: bool, seconds: float
    ) -> None: ...


class RunService:
    """Runs execute in the calling thread once the pool gives them their turn;
    ``release`` returns that thread's database connection while it waits."""

    def __init__(
        self,
        codes: CodeService,
        runs: RunRepository,
        logs: LogStore,
        runtimes: Runtimes,
        pool: RunPool,
        release: Callable[[], None] = lambda: None,
        observer: RunObserver | None = None,
        endpoint_types: Iterable[str] = ("endpoint", "flow"),
        redact_headers: Iterable[str] = (),
        limits: RunLimits | None = None,
        secrets: SecretService | None = None,
        leases: RunLeases | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self._secrets = secrets
        self.leases = leases
        """This process's claim on its runs (None: runs are created without an owner)."""
        self.records = RunRecords(runs, logs, limits or RunLimits(), release, outbox)
        """The final write of every run (and the outbox it falls back on)."""
        self._redact = frozenset(name.lower() for name in (*ALWAYS_REDACTED, *redact_headers))
        self._codes = codes
        self._endpoint_types = frozenset(endpoint_types)
        self._observer = observer
        self._runs = runs
        self._runtimes = runtimes
        self._pool = pool
        self._release = release

    def run(
        self,
        code_id: str,
        request: RunRequest,
        *,
        endpoints_only: bool = False,
        authorize: Callable[[Code], None] | None = None,
        version: int | str | None = None,
    ) -> RunResult:
        """Run a code now and wait for it. On endpoint routes, codes of a type not in
        ENDPOINT_CODE_TYPES are 'not found'; ``authorize`` may refuse the code (e.g. the
        caller's project permission) before it runs. ``version`` pins a code version
        (else the current one runs); the run records the version it ran."""
        started = time.perf_counter()
        code = self._codes.get(code_id)
        if endpoints_only and code.type.value not in self._endpoint_types:
            raise NotFound(f"code {code_id!r} not found")
        if authorize is not None:
            authorize(code)
        if version is not None:  # code versions (issue 15)
            code = self._codes.at_version(code, version)
        runtime = self._runtimes.ready(code.language)
        request = self._with_secrets(request, code)
        # What the run record keeps; the code gets ``request`` itself.
        stored = self._masked_request(self._stored(request), request.secrets)
        try:
            ticket = self._pool.admit(code.project_uuid)
        except QueueFull as exc:
            self._runs.create(
                NewRun(
                    code_id=code.id,
                    status=RunStatus.FAILED,
                    params=stored.params,
                    body=stored.body,
                    headers=stored.headers,
                    result=f"rejected: {exc.message}",
                    version=code.version,
                )
            )
            raise
        legacy_id = code_id if OBJECT_ID.fullmatch(code_id) and code_id != code.id else None
        leases = self.leases
        if leases is not None:
            leases.start()  # renews from a thread of this process (after any fork)
        try:
            run = self._runs.create(
                NewRun(
                    code_id=code.id,
                    status=RunStatus.STARTED if ticket.immediate else RunStatus.QUEUED,
                    params=stored.params,
                    body=stored.body,
                    headers=stored.headers,
                    code_mongo_id=legacy_id,
                    owner=leases.owner if leases else None,
                    lease_expires_at=leases.until() if leases else None,
                    version=code.version,
                )
            )
        except BaseException:
            self._pool.cancel(ticket)
            raise
        return self._take_turn(ticket, runtime, code, run, request, started)

    def serves_endpoint(self, code: Code) -> bool:
        """Whether the endpoint routes run ``code`` (its type is in ENDPOINT_CODE_TYPES)."""
        return code.type.value in self._endpoint_types

    def enqueue(
        self,
        code_id: str,
        request: RunRequest,
        *,
        endpoints_only: bool = False,
        authorize: Callable[[Code], None] | None = None,
        here: bool = True,
    ) -> tuple[Code, CodeRun]:
        """Check a run like :meth:`run` does and record it queued, for a worker to run later
        with :meth:`run_queued` (async runs, ``services/async_runs.py``); ``here``: this
        process runs it (else a broker's worker does, and this process's drain does not wait
        for it)."""
        code = self._codes.get(code_id)
        if endpoints_only and code.type.value not in self._endpoint_types:
            raise NotFound(f"code {code_id!r} not found")
        if authorize is not None:
            authorize(code)
        stored = self._masked_request(
            self._stored(request), self._with_secrets(request, code).secrets
        )
        legacy_id = code_id if OBJECT_ID.fullmatch(code_id) and code_id != code.id else None
        run = self._runs.create(
            NewRun(
                code_id=code.id,
                status=RunStatus.QUEUED,
                params=stored.params,
                body=stored.body,
                headers=stored.headers,
                code_mongo_id=legacy_id,
                version=code.version,
            )
        )
        if not here:
            forget = getattr(self._runs, "forget", None)  # drain.TrackedRuns
            if forget is not None:
                forget(run.id)
        return code, run

    def run_queued(
        self, code: Code, run: CodeRun, request: RunRequest, ticket: Ticket | None = None
    ) -> RunResult:
        """Execute a run :meth:`enqueue` recorded, in this thread once the pool gives it a turn
        (``ticket``: a place admitted already); it always ends completed or failed."""
        started = time.perf_counter()
        request = self._with_secrets(request, code)
        try:
            runtime = self._runtimes.ready(code.language)
            ticket = ticket or self._pool.admit(code.project_uuid)
        except Unavailable as exc:  # QueueFull too
            if ticket is not None:
                self._pool.cancel(ticket)
            outcome = Outcome(status=RunStatus.FAILED, result=exc.message)
            finished = self._runs.update(
                run.id, status=RunStatus.FAILED, result=exc.message, extra={}
            )
            return RunResult(code, finished or run, outcome, time.perf_counter() - started)
        return self._take_turn(ticket, runtime, code, run, request, started)

    def _take_turn(
        self,
        ticket: Ticket,
        runtime: Runtime,
        code: Code,
        run: CodeRun,
        request: RunRequest,
        started: float,
    ) -> RunResult:
        """Run ``run`` in the pool on ``ticket`` and report it finished (``started``: when the
        request came, by ``time.perf_counter``)."""
        self._release()  # no database connection held while the code runs or waits its turn
        finished, outcome = self._pool.run(ticket, self._execute, runtime, code, run, request)
        seconds = time.perf_counter() - started
        if self._observer is not None:
            self._observer.run_finished(
                code.project_uuid,
                code.id,
                failed=finished.status is RunStatus.FAILED,
                timed_out=outcome.timed_out,
                seconds=seconds,
            )
        return RunResult(code, finished, outcome, seconds)

    def _stored(self, request: RunRequest) -> RunRequest:
        """What the run record keeps of ``request`` (bounded, credentials redacted)."""
        return RunRequest(
            params=storable_value(request.params),
            body=storable(request.body),
            headers=storable_value(redacted(request.headers, self._redact)),
        )

    def _execute(
        self, runtime: Runtime, code: Code, run: CodeRun, request: RunRequest
    ) -> tuple[CodeRun, Outcome]:
        """The run's turn: always ends it in a terminal state, whatever fails on the way."""
        try:
            if run.status is RunStatus.QUEUED:
                self._runs.update(run.id, status=RunStatus.STARTED)
            outcome = runtime.execute(Job.of(run.id, code, request))
        except Exception as exc:
            log.exception("run %s of code %s failed inside the server", run.id, code.id)
            outcome = Outcome(
                status=RunStatus.FAILED, result=f"internal error while running the code: {exc}"
            )
        return self.records.finish(code, run, outcome, request.secrets.values())

    # Project secrets (issue 15) --------------------------------------------------------

    def _with_secrets(self, request: RunRequest, code: Code) -> RunRequest:
        """``request`` with the secrets of the code's own project, for its job."""
        if self._secrets is None:
            return request
        return dataclasses.replace(request, secrets=self._secrets.for_run(code.project_uuid))

    @staticmethod
    def _masked_request(stored: RunRequest, secrets: Mapping[str, str]) -> RunRequest:
        """What the run record keeps of the request, with any secret value in it masked."""
        if not secrets:
            return stored
        values = secrets.values()
        return RunRequest(
            params=mask_value(stored.params, values),
            body=mask_value(stored.body, values),
            headers=mask_value(stored.headers, values),
        )

    @property
    def outbox(self) -> Outbox | None:
        """Where final writes wait while the database is unreachable (None: nowhere)."""
        return self.records.outbox

    def replay_outbox(self) -> int:
        """Write the records waiting in the outbox; how many were written."""
        return self.records.replay_outbox()

    def fail_in_flight(self, reason: str = SHUTTING_DOWN) -> int:
        """Fail every queued or started run this process owns, with ``reason`` as result (a
        graceful drain that ran out of time calls it before the process exits); how many."""
        return self.leases.fail_mine(reason) if self.leases is not None else 0


ABANDONED = "abandoned: the server running it stopped before it finished"
ABANDON_AFTER = timedelta(seconds=MAX_TIMEOUT + 60)  # no run can legitimately last longer


def fail_abandoned_runs(runs: RunRepository, now: datetime | None = None) -> int:
    """Fail the runs a dead server left queued or started; how many there were."""
    return runs.fail_abandoned((now or utcnow()) - ABANDON_AFTER, ABANDONED)


ALWAYS_REDACTED = ("Authorization", "Proxy-Authorization", "Cookie")
"""Headers a stored run never shows (on every route), whatever REDACT_HEADERS adds."""
REDACTED = "[redacted]"


def redacted(headers: Mapping[str, list[str]], names: frozenset[str]) -> dict[str, list[str]]:
    """``headers`` as a run stores them: the values of ``names`` (lower case) replaced."""
    return {
        name: [REDACTED for _ in values] if name.lower() in names else list(values)
        for name, values in headers.items()
    }
