"""Drives flow executions on a few threads: those handed to it, and those the store says
are due (a wait ended, a dead worker's lease expired, an announcement was lost)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from codeactions_core.flows.engine import FlowEngine, Next
from codeactions_core.flows.store import FlowRepository
from codeactions_core.model import utcnow

log = logging.getLogger(__name__)


class ExecutionDriver:
    """At most ``threads`` executions at once, each driven by one thread of this process."""

    def __init__(
        self,
        engine: FlowEngine,
        flows: FlowRepository,
        *,
        threads: int,
        poll_seconds: float,
        release: Callable[[], None] = lambda: None,
    ) -> None:
        self._engine = engine
        self._flows = flows
        self._threads = threads
        self._poll = poll_seconds
        self._release = release
        self._lock = threading.Lock()
        self._in_flight: set[str] = set()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._backlog = False
        """The last look found every thread busy or more due than it could take."""
        self._pool: ThreadPoolExecutor | None = None
        self._looper: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._looper is not None and not self._stopping.is_set()

    def start(self) -> None:
        """Start the threads (after any fork: a server process's workers each start their own)."""
        if self._looper is not None:
            return
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="flow")
        self._looper = threading.Thread(target=self._loop, name="flow-sweeper", daemon=True)
        self._looper.start()
        log.info(
            "driving flow executions on %d threads (owner %s)", self._threads, self._engine.owner
        )

    def submit(self, execution_id: str) -> bool:
        """Drive an execution now if a thread is free and this process does not drive it
        already; False otherwise (it stays due in the store, so it is not lost)."""
        with self._lock:
            if (
                self._pool is None
                or self._stopping.is_set()
                or execution_id in self._in_flight
                or len(self._in_flight) >= self._threads
            ):
                return False
            self._in_flight.add(execution_id)
        self._pool.submit(self._drive, execution_id)
        return True

    def kick(self) -> None:
        """Look for due executions now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Take nothing new, let the steps that run finish (their executions are given back
        to be driven on elsewhere), then return."""
        self._stopping.set()
        self._engine.stop()
        self._wake.set()
        if self._looper is not None:
            self._looper.join()
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _free(self) -> int:
        with self._lock:
            return max(0, self._threads - len(self._in_flight))

    def _loop(self) -> None:
        while not self._stopping.is_set():
            free = self._free()
            self._backlog = not free
            if free:
                try:
                    now = utcnow()
                    due = self._flows.due_executions(now, now, free)
                    self._backlog = len(due) >= free
                    for execution_id in due:
                        self.submit(execution_id)
                except Exception:
                    log.exception("looking for due flow executions failed; trying again")
                finally:
                    self._release()
            self._wake.wait(self._poll)
            self._wake.clear()

    def _drive(self, execution_id: str) -> None:
        try:
            outcome = self._engine.drive(execution_id)
            if outcome.next is Next.WAITING:
                log.debug("execution %s waits until %s", execution_id, outcome.due)
        except Exception:
            log.exception("driving flow execution %s failed; it is retried when due", execution_id)
        finally:
            with self._lock:
                self._in_flight.discard(execution_id)
            self._release()
            if self._backlog:
                self.kick()  # a thread is free and executions may be waiting for one
