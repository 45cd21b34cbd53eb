"""The orderly end of a server process: which runs it still owns, and failing them.

A server process counts the runs it has created and not yet ended (``InFlightRuns``, fed by
``TrackedRuns`` wrapped around the store's run repository). On SIGTERM it stops taking work
(``DrainState.begin``: readiness answers 503), lets those runs finish for up to
GRACEFUL_TIMEOUT, then records whatever is still going as failed with ``SHUTTING_DOWN``
(``fail_in_flight``) so that no run is left ``queued`` or ``started`` by an orderly stop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from codeactions_core.model import RunStatus

log = logging.getLogger(__name__)

SHUTTING_DOWN = "server shutting down"
UNFINISHED = frozenset({RunStatus.QUEUED, RunStatus.STARTED})


class DrainState:
    """Whether this process is draining (set once, on SIGTERM)."""

    def __init__(self) -> None:
        self._draining = threading.Event()
        self.began_at: float | None = None

    def begin(self) -> None:
        if not self._draining.is_set():
            self.began_at = time.monotonic()
            self._draining.set()
            log.info("draining: readiness answers 503, in-flight runs may finish")

    @property
    def draining(self) -> bool:
        return self._draining.is_set()


class InFlightRuns:
    """Ids of the runs this process created and has not ended yet."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._ids: set[str] = set()

    def add(self, run_id: str) -> None:
        with self._lock:
            self._ids.add(run_id)

    def discard(self, run_id: str) -> None:
        with self._lock:
            self._ids.discard(run_id)
            self._lock.notify_all()

    def snapshot(self) -> list[str]:
        with self._lock:
            return sorted(self._ids)

    def wait_empty(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every run to end; True when none is left."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._ids, timeout=max(0.0, timeout))


class TrackedRuns:
    """A run repository that tells ``InFlightRuns`` which runs start and end; everything
    else goes to the wrapped repository unchanged."""

    def __init__(self, runs: Any, in_flight: InFlightRuns) -> None:
        self._runs = runs
        self._in_flight = in_flight

    def create(self, new: Any) -> Any:
        run = self._runs.create(new)
        if run.status in UNFINISHED:
            self._in_flight.add(run.id)
        return run

    def update(self, run_id: str, *args: Any, **changes: Any) -> Any:
        updated = self._runs.update(run_id, *args, **changes)
        status = changes.get("status")
        if status is not None and status not in UNFINISHED:
            self._in_flight.discard(run_id)
        return updated

    def forget(self, run_id: str) -> None:
        """``run_id`` is not this process's to finish (an async run handed to a broker)."""
        self._in_flight.discard(run_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runs, name)


def fail_in_flight(
    runs: Any,
    in_flight: InFlightRuns,
    message: str = SHUTTING_DOWN,
    ended: Callable[[str], bool] = lambda run_id: False,
) -> int:
    """Record every run still in flight as failed with ``message``, except those ``ended``
    says have ended already (their final write waits in the outbox); how many were failed."""
    failed = 0
    for run_id in in_flight.snapshot():
        if ended(run_id):
            in_flight.discard(run_id)
            continue
        try:
            runs.update(run_id, status=RunStatus.FAILED, result=message, extra={})
            failed += 1
        except Exception:
            log.exception("run %s could not be marked failed while shutting down", run_id)
        in_flight.discard(run_id)
    if failed:
        log.warning("marked %d unfinished runs failed: %s", failed, message)
    return failed


def finish_draining(
    in_flight: InFlightRuns,
    runs: Any,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
    ended: Callable[[str], bool] = lambda run_id: False,
) -> int:
    """Let in-flight runs end until ``deadline`` (a ``clock`` time), then fail the rest
    (but for those ``ended`` says have ended, their record waiting in the outbox)."""
    if in_flight.wait_empty(deadline - clock()):
        return 0
    return fail_in_flight(runs, in_flight, ended=ended)


DRAIN = DrainState()
"""This process's drain state."""

IN_FLIGHT = InFlightRuns()
"""This process's runs in flight."""
