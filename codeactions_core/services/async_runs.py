"""Async runs: accepted at once (202), run later by a worker fleet or this server's pool.

Life cycle of one run:

1. ``accept`` (API): the code is checked like a normal run, the callback URL against the
   egress policy; the run is stored ``queued`` with an :class:`AsyncRun` record beside it,
   then handed to a :class:`Submitter`: RabbitMQ (``codeactions worker`` processes take it)
   or, without a broker, a thread of this server.
2. ``execute`` (worker): a run already finished (its worker died after storing it but
   before acknowledging) is not run again, only its callback is completed. Otherwise one
   more attempt is counted in the store, at most :data:`MAX_ATTEMPTS` in all: a run whose
   workers died that often is failed instead of run again. The attempt's worker owns the
   run while it executes; its final state is stored, then the callback is delivered, and
   only then does the broker get its acknowledgement.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from codeactions_core.async_store import AsyncRun, AsyncRunRepository, CallbackState, SigningKey
from codeactions_core.errors import Conflict, InvalidInput, NotFound
from codeactions_core.execution.pool import RunPool, Ticket
from codeactions_core.execution.runtime import RunRequest
from codeactions_core.flows.runners.common import Egress
from codeactions_core.model import Code, CodeRun, RunStatus
from codeactions_core.services.callbacks import CallbackSender, check_callback_url, new_signing_key
from codeactions_core.services.codes import CodeService
from codeactions_core.services.runs import RunService
from codeactions_core.store import RunRepository

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 2
"""A run is started at most twice: once, and once more after its worker died."""
GAVE_UP = (
    "abandoned: the workers that took this async run stopped before it finished, "
    f"{MAX_ATTEMPTS} times; it is not run again"
)
FINISHED = (RunStatus.COMPLETED, RunStatus.FAILED)


def this_process() -> str:
    """``host:pid``: who took a run, as its record shows."""
    return f"{socket.gethostname()}:{os.getpid()}"


def job_of(code: Code, run: CodeRun, request: RunRequest) -> dict[str, Any]:
    """The message a worker gets: the run, and what the code gets (unredacted headers)."""
    return {
        "run_id": run.id,
        "code_id": code.id,
        "params": request.params,
        "body": request.body,
        "headers": request.headers,
    }


class Submitter(Protocol):
    via: str
    """``broker`` or ``server``: kept on the async run record (see AsyncRun.via)."""

    def admit(self, project_uuid: str) -> Ticket | None:
        """A place for one more run of ``project_uuid`` now (QueueFull when there is none)."""

    def submit(self, job: dict[str, Any], ticket: Ticket | None) -> None:
        """Hand the stored run over; Unavailable when it could not be."""

    def close(self) -> None: ...


@dataclass
class AsyncAccepted:
    code: Code
    run: CodeRun
    record: AsyncRun


class AsyncRunService:
    def __init__(
        self,
        codes: CodeService,
        runs: RunService,
        run_records: RunRepository,
        records: AsyncRunRepository,
        callbacks: CallbackSender,
        egress: Egress,
        release: Callable[[], None] = lambda: None,
    ) -> None:
        self._codes = codes
        self._runs = runs
        self._run_records = run_records
        self._records = records
        self._callbacks = callbacks
        self._egress = egress
        self._release = release
        self.submitter: Submitter | None = None
        """Set once built (it may need this service: the server's own pool)."""

    # -- the API's part -------------------------------------------------------------------

    def accept(
        self,
        code_id: str,
        request: RunRequest,
        *,
        callback_url: str = "",
        endpoints_only: bool = False,
        authorize: Callable[[Code], None] | None = None,
    ) -> AsyncAccepted:
        """Store the run queued and hand it to the workers; 4xx for bad input, 503 when
        neither the broker nor this server can take it now (the run is then stored failed)."""
        assert self.submitter is not None, "AsyncRunService.submitter is not set"
        code = self._codes.get(code_id)
        if endpoints_only and not self._runs.serves_endpoint(code):
            raise NotFound(f"code {code_id!r} not found")
        if authorize is not None:
            authorize(code)
        if callback_url:
            check_callback_url(callback_url, self._egress)
        if callback_url and self._records.signing_key(code.project_uuid) is None:
            raise Conflict(
                f"project {code.project_uuid!r} has no callback signing key yet: a moderator "
                f"creates one with POST /projects/{code.project_uuid}/signing-key"
            )
        ticket = self.submitter.admit(code.project_uuid)
        try:
            code, run = self._runs.enqueue(
                code_id, request, endpoints_only=endpoints_only, here=self.submitter.via != "broker"
            )
            record = self._records.create(
                AsyncRun(
                    run_id=run.id,
                    project_uuid=code.project_uuid,
                    callback_url=callback_url,
                    via=self.submitter.via,
                    callback_state=CallbackState.PENDING if callback_url else CallbackState.NONE,
                )
            )
        except BaseException:
            self._cancel(ticket)
            raise
        try:
            self.submitter.submit(job_of(code, run, request), ticket)
        except Exception as exc:
            reason = getattr(exc, "message", None) or str(exc)
            self._run_records.update(
                run.id, status=RunStatus.FAILED, result=f"rejected: {reason}", extra={}
            )
            if callback_url:  # the caller got the refusal itself
                self._records.set_callback(
                    run.id, CallbackState.FAILED, 0, "not sent: the run was rejected"
                )
            raise
        return AsyncAccepted(code, run, record)

    def _cancel(self, ticket: Ticket | None) -> None:
        pool = getattr(self.submitter, "pool", None)
        if ticket is not None and isinstance(pool, RunPool):
            pool.cancel(ticket)

    def record(self, run_id: str) -> AsyncRun:
        found = self._records.get(run_id)
        if found is None:
            raise NotFound(f"no async run {run_id!r}")
        return found

    def signing_key(self, project_uuid: str) -> SigningKey:
        found = self._records.signing_key(project_uuid)
        if found is None:
            raise NotFound(f"project {project_uuid!r} has no callback signing key yet")
        return found

    def rotate_signing_key(self, project_uuid: str) -> SigningKey:
        if not project_uuid.strip() or len(project_uuid) > 255:
            raise InvalidInput("the project uuid must be 1 to 255 characters")
        return self._records.rotate_signing_key(project_uuid, new_signing_key())

    # -- the worker's part ----------------------------------------------------------------

    def execute(
        self,
        job: dict[str, Any],
        *,
        redelivered: bool = False,
        worker: str = "",
        ticket: Ticket | None = None,
    ) -> None:
        """Run one job to its stored end (see the module's docstring). Raises when the
        store fails: the job is then to be tried again."""
        worker = worker or this_process()
        run_id = str(job["run_id"])
        try:
            self._execute(job, run_id, worker, redelivered, ticket)
        finally:
            self._release()

    def _execute(
        self,
        job: dict[str, Any],
        run_id: str,
        worker: str,
        redelivered: bool,
        ticket: Ticket | None,
    ) -> None:
        run = self._run_records.get(run_id)
        before = self._records.get(run_id)
        if run is None or before is None:
            log.warning("async run %s is not in the store (deleted?); dropped", run_id)
            self._cancel(ticket)
            return
        if run.status in FINISHED:
            log.info("async run %s finished already (%s); not run again", run_id, run.status)
            self._cancel(ticket)
            self._callback(before, run)
            return
        claimed = self._records.claim(
            run_id, worker, redelivered=redelivered, max_attempts=MAX_ATTEMPTS
        )
        if claimed is None or claimed.attempts == before.attempts:
            log.warning("async run %s: %s", run_id, GAVE_UP)
            self._cancel(ticket)
            failed = self._run_records.update(
                run_id, status=RunStatus.FAILED, result=GAVE_UP, extra={}
            )
            self._callback(claimed or before, failed or run)
            return
        log.info(
            "async run %s: attempt %d by %s%s",
            run_id,
            claimed.attempts,
            worker,
            " (redelivered)" if redelivered else "",
        )
        request = RunRequest(
            params=dict(job.get("params") or {}),
            body=str(job.get("body") or ""),
            headers={k: list(v) for k, v in (job.get("headers") or {}).items()},
        )
        try:
            code = self._codes.get(run.code_id)
        except NotFound:
            self._cancel(ticket)
            finished = self._run_records.update(
                run_id,
                status=RunStatus.FAILED,
                result="the code was deleted before the run started",
                extra={},
            )
            self._callback(claimed, finished or run)
            return
        result = self._runs.run_queued(code, run, request, ticket)
        log.info(
            "async run %s: attempt %d finished %s", run_id, claimed.attempts, result.run.status
        )
        if result.run.status not in FINISHED:  # the final state could not be stored
            raise RuntimeError(f"async run {run_id}: its final state could not be stored")
        self._callback(claimed, result.run)

    def _callback(self, record: AsyncRun, run: CodeRun) -> None:
        if not record.callback_url or record.callback_state != CallbackState.PENDING:
            return
        key = self._records.signing_key(record.project_uuid)
        if key is None:
            self._records.set_callback(
                record.run_id, CallbackState.FAILED, 0, "the project has no signing key any more"
            )
            return
        self._release()  # no database connection held while the receiver answers
        delivery = self._callbacks.deliver(record.callback_url, run, key.key)
        state = CallbackState.DELIVERED if delivery.delivered else CallbackState.FAILED
        self._records.set_callback(record.run_id, state, delivery.attempts, delivery.error)
        log.info(
            "async run %s: callback %s after %d attempt(s)", record.run_id, state, delivery.attempts
        )


class RunHere:
    """No broker: this server's own pool runs the async runs, in threads of its own."""

    via = "server"

    def __init__(self, service: AsyncRunService, pool: RunPool) -> None:
        self._service = service
        self.pool = pool
        self._worker = this_process()

    def admit(self, project_uuid: str) -> Ticket | None:
        return self.pool.admit(project_uuid)

    def submit(self, job: dict[str, Any], ticket: Ticket | None) -> None:
        threading.Thread(
            target=self._run, args=(job, ticket), name=f"async-run-{job['run_id']}", daemon=True
        ).start()

    def _run(self, job: dict[str, Any], ticket: Ticket | None) -> None:
        try:
            self._service.execute(job, worker=self._worker, ticket=ticket)
        except Exception:  # the run stays started: the abandoned-run sweep fails it
            log.exception("async run %s failed inside the server", job.get("run_id"))

    def close(self) -> None:
        pass


class RunOnWorkers:
    """A broker: publish (with confirms) for `codeactions worker` processes to take."""

    via = "broker"

    def __init__(self, publisher: Any) -> None:
        self._publisher = publisher

    def admit(self, project_uuid: str) -> Ticket | None:
        return None

    def submit(self, job: dict[str, Any], ticket: Ticket | None) -> None:
        self._publisher.publish(job)

    def close(self) -> None:
        self._publisher.close()
