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


class RunPool:
    def __init__(self, workers: int, queue_size: int) -> None:
        self.workers = workers
        self.queue_size = queue_size
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="run")
        self._slots = threading.BoundedSemaphore(workers + queue_size)
        self._lock = threading.Lock()
        self._busy = self._admitted = 0
        self._submitted = self._completed = self._failed = self._rejected = 0

    def submit(self, work: Callable[..., T], *args: Any) -> Future[T]:
        """Queue ``work``; raise QueueFull (never block) when no slot is free."""
        if not self._slots.acquire(blocking=False):
            with self._lock:
                self._rejected += 1
            raise QueueFull(
                f"all {self.workers} workers are busy and {self.queue_size} runs are waiting; try again later"
            )
        with self._lock:
            self._submitted += 1
            self._admitted += 1
        return self._executor.submit(self._call, work, *args)

    def _call(self, work: Callable[..., T], *args: Any) -> T:
        with self._lock:
            self._busy += 1
        failed = True
        try:
            result = work(*args)
            failed = False
            return result
        finally:
            with self._lock:
                self._busy -= 1
                self._admitted -= 1
                if failed:
                    self._failed += 1
                else:
                    self._completed += 1
            self._slots.release()

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
