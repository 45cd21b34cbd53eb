"""The bounded worker pool of a server process: WORKER_POOL_SIZE runs at once,
WORKER_POOL_QUEUE_SIZE more waiting, anything beyond refused at once.

Runs execute in the thread that asked for them (the request's thread): the
pool only admits them and makes them take turns, so a run costs no hand-off
between threads.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

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
    queue_wait_seconds: float
    """Total time admitted runs spent waiting for a worker."""


class PoolObserver(Protocol):
    """Told what the pool does (metrics). Occupancy is reported under the pool's lock,
    so that the last value reported is always the current one; keep it cheap."""

    def pool_sized(self, workers: int, capacity: int) -> None: ...

    def pool_occupancy(self, busy: int, queued: int) -> None: ...

    def pool_rejected(self) -> None: ...

    def pool_started(self, waited_seconds: float) -> None: ...

    def pool_finished(self, held_seconds: float) -> None: ...


class Unobserved:
    def pool_sized(self, workers: int, capacity: int) -> None: pass

    def pool_occupancy(self, busy: int, queued: int) -> None: pass

    def pool_rejected(self) -> None: pass

    def pool_started(self, waited_seconds: float) -> None: pass

    def pool_finished(self, held_seconds: float) -> None: pass


class Ticket:
    """An admitted run's place; ``immediate`` when a worker was free for it at once."""

    def __init__(self, immediate: bool) -> None:
        self.immediate = immediate
        self.turn = threading.Event()
        self.open = True
        if immediate:
            self.turn.set()


class RunPool:
    def __init__(self, workers: int, queue_size: int, observer: PoolObserver | None = None) -> None:
        self.workers = workers
        self.queue_size = queue_size
        self._observer = observer or Unobserved()
        self._observer.pool_sized(workers, queue_size)
        self._lock = threading.Lock()
        self._waiting: collections.deque[Ticket] = collections.deque()
        self._busy = 0
        self._submitted = self._completed = self._failed = self._rejected = 0
        self._queue_wait = 0.0

    def admit(self) -> Ticket:
        """A place for one run; raise QueueFull (never block) when there is none."""
        with self._lock:
            full = self._busy + len(self._waiting) >= self.workers + self.queue_size
            if full:
                self._rejected += 1
            else:
                ticket = Ticket(immediate=self._busy < self.workers and not self._waiting)
                if ticket.immediate:
                    self._busy += 1
                else:
                    self._waiting.append(ticket)
                self._observer.pool_occupancy(self._busy, len(self._waiting))
        if full:
            self._observer.pool_rejected()
            raise QueueFull(
                f"all {self.workers} workers are busy and {self.queue_size} runs are waiting; "
                "try again later"
            )
        return ticket

    def run(self, ticket: Ticket, work: Callable[..., T], *args: Any) -> T:
        """Wait for ``ticket``'s turn, then run ``work`` in this thread."""
        asked = time.monotonic()
        ticket.turn.wait()
        started = time.monotonic()
        with self._lock:
            self._submitted += 1
            self._queue_wait += started - asked
        self._observer.pool_started(started - asked)
        ok = False
        try:
            result = work(*args)
            ok = True
            return result
        finally:
            self._leave(ticket, ok)
            self._observer.pool_finished(time.monotonic() - started)

    def cancel(self, ticket: Ticket) -> None:
        """Give the place back without running anything."""
        self._leave(ticket, None)

    def _leave(self, ticket: Ticket, ok: bool | None) -> None:
        with self._lock:
            if not ticket.open:
                return
            ticket.open = False
            if ticket.turn.is_set():
                self._busy -= 1
            else:
                self._waiting.remove(ticket)
            if ok is True:
                self._completed += 1
            elif ok is False:
                self._failed += 1
            while self._waiting and self._busy < self.workers:
                following = self._waiting.popleft()
                self._busy += 1
                following.turn.set()
            self._observer.pool_occupancy(self._busy, len(self._waiting))

    def stats(self) -> PoolStats:
        with self._lock:
            return PoolStats(
                workers=self.workers,
                busy=self._busy,
                queued=len(self._waiting),
                capacity=self.queue_size,
                submitted=self._submitted,
                completed=self._completed,
                failed=self._failed,
                rejected=self._rejected,
                queue_wait_seconds=self._queue_wait,
            )

    def shutdown(self) -> None:
        """Nothing to stop: runs execute in their requests' threads."""
