"""The bounded worker pool of a server process: WORKER_POOL_SIZE runs at once,
WORKER_POOL_QUEUE_SIZE more waiting, anything beyond refused at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from codeactions_core.errors import Unavailable

T = TypeVar("T")


class QueueFull(Unavailable):
    """Every worker is busy and the queue is full."""


@dataclass(frozen=True)
class PoolStats:
    workers: int
    busy: int
    queued: int
    capacity: int
    submitted: int
    completed: int
    failed: int
    rejected: int


class Ticket:
    """An admitted run's place in the pool; ``immediate`` when a worker was free for it."""

    def __init__(self, pool: RunPool, immediate: bool) -> None:
        self.immediate = immediate
        self._pool = pool
        self._open = True

    def cancel(self) -> None:
        """Give the place back without running anything."""
        if self._open:
            self._open = False
            self._pool._leave(self, ran=None)


class RunPool:
    def __init__(self, workers: int, queue_size: int) -> None:
        self.workers = workers
        self.queue_size = queue_size
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="run")
        self._lock = threading.Lock()
        self._admitted = self._busy = self._reserved = 0
        self._submitted = self._completed = self._failed = self._rejected = 0

    def admit(self) -> Ticket:
        """A place for one run; raise QueueFull (never block) when there is none."""
        with self._lock:
            if self._admitted >= self.workers + self.queue_size:
                self._rejected += 1
                raise QueueFull(
                    f"all {self.workers} workers are busy and {self.queue_size} runs are waiting; "
                    "try again later"
                )
            self._admitted += 1
            immediate = self._busy + self._reserved < self.workers
            if immediate:
                self._reserved += 1
            return Ticket(self, immediate)

    def start(self, ticket: Ticket, work: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``work`` in the place ``ticket`` holds."""
        with self._lock:
            self._submitted += 1
        return self._executor.submit(self._call, ticket, work, *args)

    def submit(self, work: Callable[..., T], *args: Any) -> Future[T]:
        return self.start(self.admit(), work, *args)

    def _call(self, ticket: Ticket, work: Callable[..., T], *args: Any) -> T:
        with self._lock:
            self._busy += 1
            if ticket.immediate:
                self._reserved -= 1
        ran = False
        try:
            result = work(*args)
            ran = True
            return result
        finally:
            with self._lock:
                self._busy -= 1
            ticket._open = False
            self._leave(ticket, ran=ran)

    def _leave(self, ticket: Ticket, ran: bool | None) -> None:
        with self._lock:
            self._admitted -= 1
            if ran is None and ticket.immediate:
                self._reserved -= 1
            elif ran is True:
                self._completed += 1
            elif ran is False:
                self._failed += 1

    def stats(self) -> PoolStats:
        with self._lock:
            return PoolStats(
                workers=self.workers,
                busy=self._busy,
                queued=self._admitted - self._busy,
                capacity=self.queue_size,
                submitted=self._submitted,
                completed=self._completed,
                failed=self._failed,
                rejected=self._rejected,
            )

    def shutdown(self, wait: bool = True) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=not wait)
