"""The flow engine: drives one execution one step further, as a persisted state machine.

``FlowEngine.drive(execution_id)`` claims the execution (a lease in the store,
so no two workers ever run its steps at once), runs its steps one after the
other, writing the execution after each one, and gives it back when it ends,
waits, or another worker holds it. A wait is only a time written in the store
(``resume_at``); whoever drives executions picks it up when it is due. A
worker that dies mid-step leaves its lease to expire; the next one to claim
the execution runs that step again (``attempt`` 2) and never repeats a
completed one.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, Self

from codeactions_core.flows.model import ExecutionStatus, FlowExecution, StepStatus, VersionStatus
from codeactions_core.flows.placeholders import make_scope, resolve
from codeactions_core.flows.registry import StepRunners, check_resolved
from codeactions_core.flows.steps import StepContext, StepFailed, StepResult, cleanup_of
from codeactions_core.flows.store import FlowRepository
from codeactions_core.model import rfc3339, utcnow

log = logging.getLogger(__name__)

PROGRAM_CACHE_SIZE = 512
MAX_STEP_LOG_LINES = 200
MAX_STEP_LOG_CHARS = 2000
INTERRUPTED = "interrupted: the worker running this step stopped; it ran again"

RunCodeFunction = Callable[[str, str, Mapping[str, str]], Any]
"""``run_code(project_uuid, code_id, params)``: the result of a code action of that project."""


class Next(enum.Enum):
    """What a driver should do after ``drive``."""

    DONE = "done"
    """The execution is terminal (or unknown)."""
    WAITING = "waiting"
    """It waits until ``DriveResult.due``; drive it again then."""
    HELD = "held"
    """Another worker holds it; it drives it on, or its lease expires and it is due again."""


@dataclass(frozen=True)
class DriveResult:
    next: Next
    due: datetime | None = None
    steps_run: int = 0


def new_record(step: Mapping[str, Any], index: int, attempt: int, now: datetime) -> dict[str, Any]:
    """The record of one step run in ``FlowExecution.logs``."""
    return {
        "index": index,
        "step_id": step.get("id"),
        "type": step.get("type"),
        "name": step.get("name", ""),
        "status": str(StepStatus.RUNNING),
        "attempt": attempt,
        "started_at": rfc3339(now),
        "finished_at": None,
        "duration_ms": None,
        "logs": [],
        "result": None,
        "error": None,
    }


class StepLog:
    """``on_log`` of one step: bounded lines in its record."""

    def __init__(self, record: dict[str, Any], clock: Callable[[], datetime]) -> None:
        self._lines: list[dict[str, Any]] = record["logs"]
        self._clock = clock
        self._lock = threading.Lock()

    def __call__(self, message: Any, level: str = "info") -> None:
        with self._lock:
            if len(self._lines) >= MAX_STEP_LOG_LINES:
                return
            text = str(message)[:MAX_STEP_LOG_CHARS]
            if len(self._lines) == MAX_STEP_LOG_LINES - 1:
                text, level = f"(further lines dropped: at most {MAX_STEP_LOG_LINES})", "info"
            self._lines.append({"at": rfc3339(self._clock()), "level": level, "message": text})


class Lease:
    """Keeps a claimed execution's lease alive from a timer thread while a step runs."""

    def __init__(
        self,
        flows: FlowRepository,
        execution_id: str,
        owner: str,
        length: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._flows, self._id, self._owner = flows, execution_id, owner
        self._length, self._clock = length, clock
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(
            target=self._renew, name=f"lease-{execution_id[:8]}", daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _renew(self) -> None:
        interval = self._length.total_seconds() / 3
        while not self._stop.wait(interval):
            try:
                if not self._flows.renew(self._id, self._owner, self._clock() + self._length):
                    self.lost = True
                    return
            except Exception:  # a failed renewal is retried; the lease is still ours for a while
                log.exception("renewing the lease of execution %s failed", self._id)


class FlowObserver(Protocol):
    """Told of every step run and every execution that ends (metrics)."""

    def flow_step_ran(self, step_type: str, status: str, seconds: float) -> None: ...

    def flow_execution_finished(self, status: str) -> None: ...


class FlowEngine:
    def __init__(
        self,
        flows: FlowRepository,
        runners: StepRunners,
        *,
        owner: str,
        lease: timedelta = timedelta(seconds=30),
        run_code: RunCodeFunction | None = None,
        clock: Callable[[], datetime] = utcnow,
        observer: FlowObserver | None = None,
    ) -> None:
        self._flows = flows
        self._observer = observer
        self._runners = runners
        self._owner = owner
        self._lease = lease
        self._run_code = run_code
        self._clock = clock
        self._stopping = threading.Event()
        self._programs: dict[str, tuple[list[dict[str, Any]], str]] = {}

    @property
    def owner(self) -> str:
        return self._owner

    def stop(self) -> None:
        """Finish the steps running now but start no other: their executions are given back,
        due at once, for another worker to go on with."""
        self._stopping.set()

    def drive(self, execution_id: str) -> DriveResult:
        """Run the execution's steps until it ends, waits or is held by another worker."""
        now = self._clock()
        execution = self._flows.claim(execution_id, self._owner, now + self._lease, now)
        if execution is None:
            return self._unclaimed(execution_id)
        with Lease(self._flows, execution_id, self._owner, self._lease, self._clock) as lease:
            return self._run(execution, lease)

    def _unclaimed(self, execution_id: str) -> DriveResult:
        current = self._flows.get_execution(execution_id)
        if current is None or current.status.terminal:
            return DriveResult(Next.DONE)
        return DriveResult(Next.HELD, current.lease_expires_at)

    def _run(self, execution: FlowExecution, lease: Lease) -> DriveResult:
        program = self._program(execution)
        if program is None:
            return self._finish(
                execution, ExecutionStatus.FAILED, "its flow version no longer exists"
            )
        steps, project = program
        steps_run = 0
        while True:
            if execution.cancel_requested:
                return self._finish(execution, ExecutionStatus.CANCELLED, "cancelled", steps_run)
            if execution.resume_at and execution.resume_at > self._clock():
                return self._save_and_release(
                    execution, DriveResult(Next.WAITING, execution.resume_at, steps_run)
                )
            if execution.status is ExecutionStatus.PENDING:
                execution.status, execution.started_at = ExecutionStatus.RUNNING, self._clock()
            if execution.next_step >= len(steps):
                return self._finish(execution, ExecutionStatus.COMPLETED, "", steps_run)
            if self._stopping.is_set():
                return self._save_and_release(
                    execution, DriveResult(Next.HELD, steps_run=steps_run)
                )
            step_ran = self._step(execution, steps, project, lease)
            steps_run += 1
            if isinstance(step_ran, DriveResult):
                return DriveResult(step_ran.next, step_ran.due, steps_run)
            execution = step_ran

    def _program(self, execution: FlowExecution) -> tuple[list[dict[str, Any]], str] | None:
        """The steps and project of an execution's version; cached, since a version that
        runs (published or archived) never changes."""
        program = self._programs.get(execution.flow_version_id)
        if program is None:
            version = self._flows.get_version_by_id(execution.flow_version_id)
            definition = self._flows.get_definition(execution.flow_definition_id)
            if version is None or definition is None:
                return None
            program = (version.steps, definition.project_uuid)
            if version.status is not VersionStatus.DRAFT:
                if len(self._programs) >= PROGRAM_CACHE_SIZE:
                    self._programs.clear()
                self._programs[execution.flow_version_id] = program
        return program

    def _step(
        self, execution: FlowExecution, steps: list[dict[str, Any]], project: str, lease: Lease
    ) -> DriveResult | FlowExecution:
        """Run (or finish waiting for) the step at ``next_step``: the execution as saved to go
        on with, or an DriveResult when driving stops."""
        index = execution.next_step
        step = steps[index]
        previous = last_record(execution, index)
        if previous is not None and previous["status"] == StepStatus.WAITING:
            previous["status"] = str(StepStatus.COMPLETED)
            return self._advance(execution, index, steps)
        attempt = 1
        if previous is not None and previous["status"] == StepStatus.RUNNING:
            previous.update(status=str(StepStatus.FAILED), error=INTERRUPTED)
            attempt = previous["attempt"] + 1
        record = new_record(step, index, attempt, self._clock())
        execution.logs.append(record)
        # the start is on record (with the end of the step before, when there was one)
        saved = self._flows.save(execution, self._owner, release=False)
        if saved is None:
            return DriveResult(Next.HELD)
        if saved.cancel_requested:
            execution.logs.pop()
            return self._finish(execution, ExecutionStatus.CANCELLED, "cancelled")
        started = time.perf_counter()
        try:
            result = self._execute(execution, step, project, record, attempt)
        except Exception as exc:  # noqa: BLE001  (whatever a step raises fails that step only)
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            record.update(status=str(StepStatus.FAILED), error=message)
            result = None
        finally:
            seconds = time.perf_counter() - started
            record["finished_at"] = rfc3339(self._clock())
            record["duration_ms"] = round(seconds * 1000, 3)
        if self._observer is not None:
            waits = result is not None and result.resume_after > 0
            outcome = (
                StepStatus.FAILED
                if result is None
                else StepStatus.WAITING
                if waits
                else StepStatus.COMPLETED
            )
            self._observer.flow_step_ran(str(step.get("type")), str(outcome), seconds)
        if lease.lost:
            log.warning(
                "execution %s: lease lost while step %s ran; another worker goes on",
                execution.id,
                index,
            )
            return DriveResult(Next.HELD)
        if result is None:
            if not step.get("continue_on_error"):
                error = f"step {step.get('id')!r} ({step.get('type')}) failed: {record['error']}"
                return self._finish(execution, ExecutionStatus.FAILED, error)
            return self._advance(execution, index, steps)
        record["result"] = result.result
        execution.result[str(step.get("id"))] = result.result
        if result.resume_after > 0:
            record["status"] = str(StepStatus.WAITING)
            execution.resume_at = self._clock() + timedelta(seconds=result.resume_after)
            return self._save_and_release(execution, DriveResult(Next.WAITING, execution.resume_at))
        record["status"] = str(StepStatus.COMPLETED)
        return self._advance(execution, index, steps)

    def _execute(
        self,
        execution: FlowExecution,
        step: Mapping[str, Any],
        project: str,
        record: dict,
        attempt: int,
    ) -> StepResult:
        runner = self._runners.get(str(step.get("type")))
        if runner is None:
            raise StepFailed(f"no step runner for type {step.get('type')!r} is installed")
        variables = execution.context.get("variables") or {}
        config = resolve(
            step.get("config") or {}, make_scope(execution.lead_id, variables, execution.result)
        )
        check_resolved(runner, config)
        context = StepContext(
            execution_id=execution.id,
            flow_id=execution.flow_definition_id,
            project_uuid=project,
            step_id=str(step.get("id")),
            lead_id=execution.lead_id,
            variables=variables,
            steps=dict(execution.result),
            attempt=attempt,
            run_code=self._code_runner(project),
        )
        try:
            result = runner.execute(config, context, StepLog(record, self._clock))
        finally:
            cleanup = cleanup_of(runner)
            if cleanup is not None:
                try:
                    cleanup(context)
                except Exception:
                    log.exception(
                        "cleanup of step %s of execution %s failed", context.step_id, execution.id
                    )
        return result if isinstance(result, StepResult) else StepResult(result=result)

    def _code_runner(self, project: str) -> Callable[[str, Mapping[str, str]], Any] | None:
        if self._run_code is None:
            return None
        run_code = self._run_code
        return lambda code_id, params, **options: run_code(project, code_id, params, **options)

    def _advance(
        self, execution: FlowExecution, index: int, steps: list
    ) -> DriveResult | FlowExecution:
        """Move past step ``index``: the execution to go on with (written together with the
        start of the next step), or an DriveResult when it finished after its last step."""
        execution.next_step = index + 1
        execution.resume_at = self._clock()
        if execution.next_step >= len(steps):
            return self._finish(execution, ExecutionStatus.COMPLETED, "")
        return execution

    def _finish(
        self, execution: FlowExecution, status: ExecutionStatus, error: str, steps_run: int = 0
    ) -> DriveResult:
        execution.status, execution.error_message = status, error
        execution.finished_at = self._clock()
        execution.resume_at = None
        if self._flows.save(execution, self._owner, release=True) is None:
            return DriveResult(Next.HELD, steps_run=steps_run)
        if self._observer is not None:
            self._observer.flow_execution_finished(str(status))
        return DriveResult(Next.DONE, steps_run=steps_run)

    def _save_and_release(self, execution: FlowExecution, outcome: DriveResult) -> DriveResult:
        saved = self._flows.save(execution, self._owner, release=True)
        if saved is None:
            return DriveResult(Next.HELD, steps_run=outcome.steps_run)
        if saved.cancel_requested and not saved.status.terminal:
            return self._cancel_now(execution.id, outcome.steps_run)  # asked while we held it
        return outcome

    def _cancel_now(self, execution_id: str, steps_run: int) -> DriveResult:
        now = self._clock()
        execution = self._flows.claim(execution_id, self._owner, now + self._lease, now)
        if execution is None:
            return DriveResult(Next.HELD, steps_run=steps_run)
        return self._finish(execution, ExecutionStatus.CANCELLED, "cancelled", steps_run)


def last_record(execution: FlowExecution, index: int) -> dict[str, Any] | None:
    """The latest record of the step at ``index``, if it ran before."""
    for record in reversed(execution.logs):
        if record.get("index") == index:
            return record
    return None
