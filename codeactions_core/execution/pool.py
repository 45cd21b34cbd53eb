"""The bounded worker pool of a server process: WORKER_POOL_SIZE runs at once,
WORKER_POOL_QUEUE_SIZE more waiting, anything beyond refused at once.

Fair sharing: one project runs at most ``per_project`` runs at once and keeps at
most ``per_project_queue`` waiting, so that the workers and the queue it cannot
take are always there for the other projects; a freed worker goes to the oldest
waiting run whose project is under its share.

Runs execute in the thread that asked for them (the request's thread): the
pool only admits them and makes them take turns, so a run costs no hand-off
between threads.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from codeactions_core.errors import Unavailable

T = TypeVar("T")


class QueueFull(Unavailable):
    """Every worker is busy and the queue is full."""


class PoolObserver(Protocol):
    """Told what the pool does (metrics). Occupancy is reported under the pool's lock,
    so that the last value reported is always the current one; keep it cheap."""

    def pool_sized(self, workers: int, capacity: int) -> None: ...

    def pool_occupancy(self, busy: int, queued: int) -> None: ...

    def pool_rejected(self) -> None: ...

    def pool_started(self, waited_seconds: float) -> None: ...

    def pool_finished(self, held_seconds: float) -> None: ...


class Unobserved:
    def pool_sized(self, workers: int, capacity: int) -> None:
        pass

    def pool_occupancy(self, busy: int, queued: int) -> None:
        pass

    def pool_rejected(self) -> None:
        pass

    def pool_started(self, waited_seconds: float) -> None:
        pass

    def pool_finished(self, held_seconds: float) -> None:
        pass


class Ticket:
    """An admitted run's place; ``immediate`` when a worker was free for it at once."""

    def __init__(self, immediate: bool, project: str = "") -> None:
        self.immediate = immediate
        self.project = project
        self.turn = threading.Event()
        self.open = True
        if immediate:
            self.turn.set()


class RunPool:
    def __init__(
        self,
        workers: int,
        queue_size: int,
        observer: PoolObserver | None = None,
        *,
        per_project: int | None = None,
        per_project_queue: int | None = None,
    ) -> None:
        self.workers = workers
        self.queue_size = queue_size
        self.per_project = workers if per_project is None else max(1, min(per_project, workers))
        self.per_project_queue = (
            queue_size if per_project_queue is None else min(per_project_queue, queue_size)
        )
        self._running: collections.Counter[str] = collections.Counter()
        self._queued: collections.Counter[str] = collections.Counter()
        self._observer = observer or Unobserved()
        self._observer.pool_sized(workers, queue_size)
        self._lock = threading.Lock()
        self._waiting: collections.deque[Ticket] = collections.deque()
        self._busy = 0

    def admit(self, project: str = "") -> Ticket:
        """A place for one run of ``project``; raise QueueFull (never block) when there is none."""
        refusal = ""
        with self._lock:
            if self._busy < self.workers and self._running[project] < self.per_project:
                ticket = Ticket(immediate=True, project=project)
                self._start(ticket)
            elif self._busy >= self.workers and len(self._waiting) >= self.queue_size:
                refusal = (
                    f"all {self.workers} workers are busy and {self.queue_size} runs are waiting; "
                    "try again later"
                )
            elif (
                len(self._waiting) >= self.queue_size
                or self._queued[project] >= self.per_project_queue
            ):
                refusal = (
                    f"project {project!r} is using its share of this server: "
                    f"{self._running[project]} runs executing (at most {self.per_project}) and "
                    f"{self._queued[project]} waiting (at most {self.per_project_queue}); "
                    "try again later"
                )
            else:
                ticket = Ticket(immediate=False, project=project)
                self._waiting.append(ticket)
                self._queued[project] += 1
            if not refusal:
                self._observer.pool_occupancy(self._busy, len(self._waiting))
        if refusal:
            self._observer.pool_rejected()
            raise QueueFull(refusal)
        return ticket

    def _start(self, ticket: Ticket) -> None:
        """Give ``ticket`` a worker (under the lock)."""
        self._busy += 1
        self._running[ticket.project] += 1
        ticket.turn.set()

    def run(self, ticket: Ticket, work: Callable[..., T], *args: Any) -> T:
        """Wait for ``ticket``'s turn, then run ``work`` in this thread."""
        asked = time.monotonic()
        ticket.turn.wait()
        started = time.monotonic()
        self._observer.pool_started(started - asked)
        try:
            return work(*args)
        finally:
            self._leave(ticket)
            self._observer.pool_finished(time.monotonic() - started)

    def cancel(self, ticket: Ticket) -> None:
        """Give the place back without running anything."""
        self._leave(ticket)

    def _leave(self, ticket: Ticket) -> None:
        with self._lock:
            if not ticket.open:
                return
            ticket.open = False
            if ticket.turn.is_set():
                self._busy -= 1
                self._running[ticket.project] -= 1
                if not self._running[ticket.project]:
                    del self._running[ticket.project]
            else:
                self._waiting.remove(ticket)
                self._unqueue(ticket)
            for following in list(self._waiting):
                if self._busy >= self.workers:
                    break
                if self._running[following.project] < self.per_project:
                    self._waiting.remove(following)
                    self._unqueue(following)
                    self._start(following)
            self._observer.pool_occupancy(self._busy, len(self._waiting))

    def _unqueue(self, ticket: Ticket) -> None:
        self._queued[ticket.project] -= 1
        if not self._queued[ticket.project]:
            del self._queued[ticket.project]

    @property
    def busy(self) -> int:
        """Runs executing now."""
        with self._lock:
            return self._busy
