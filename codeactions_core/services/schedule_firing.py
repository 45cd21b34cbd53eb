"""Firing due schedules: what ``codeactions scheduler`` does every SCHEDULE_POLL_SECONDS.

Each pass takes the ``schedules`` lock (Redis, else the database: the cleaners' lock
kind), so one replica at a time looks at due schedules; each occurrence is also
claimed in the store under a unique key before it fires, so even two passes that
overlap (a lock that expired) fire it once. Of the occurrences that came due since
a schedule was last looked at, only the latest fires, and only when it is at most
SCHEDULE_MISFIRE_GRACE_SECONDS old: the others (no scheduler was running) are
counted on the schedule as ``missed`` with ``last_missed_at``, never replayed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from codeactions_core.errors import CodeActionsError
from codeactions_core.locks import new_holder
from codeactions_core.model import RunStatus, utcnow
from codeactions_core.scheduling.cron import Cron
from codeactions_core.scheduling.model import FiringStatus, Schedule, ScheduleFiring, TargetType
from codeactions_core.scheduling.store import ScheduleRepository
from codeactions_core.store import LockRepository

log = logging.getLogger("codeactions.scheduler")

SCHEDULES_LOCK = "schedules"
DUE_BATCH = 200
STILL_RUNNING = "skipped: the previous firing of this schedule is still running"
MAX_COUNTED = 100_000
"""Missed occurrences counted in one pass at most (a per-second schedule after a long outage)."""


@dataclass(frozen=True)
class Fired:
    """What starting a schedule's target gave: a run or an execution, and whether it failed."""

    run_id: str | None = None
    execution_id: str | None = None
    error: str = ""


Target = Callable[[Schedule], Fired]
"""Start what a schedule names (run the code and wait, or start the flow execution)."""


@dataclass(frozen=True)
class PassSummary:
    status: str  # "done", or "skipped" when another replica held the lock
    due: int = 0
    fired: int = 0
    missed: int = 0

    def line(self) -> str:
        return (
            f"schedules pass status={self.status} due={self.due} fired={self.fired} "
            f"missed={self.missed}"
        )


@dataclass
class ScheduleFirer:
    schedules: ScheduleRepository
    locks: LockRepository
    targets: dict[TargetType, Target]
    executor: Executor
    """Where firings run, so that a long run does not hold up the next pass."""
    grace: timedelta
    lock_ttl: timedelta = timedelta(seconds=60)
    clock: Callable[[], datetime] = utcnow
    holder: str = field(default_factory=new_holder)
    release: Callable[[], None] = lambda: None
    _running: set[str] = field(default_factory=set, init=False)
    """Schedules whose firing is under way in this process: one at a time each."""
    _guard: threading.Lock = field(default_factory=threading.Lock, init=False)

    def tick(self) -> PassSummary:
        """One pass: fire the latest due occurrence of each due schedule, count the rest."""
        if not self.locks.try_acquire(SCHEDULES_LOCK, self.holder, self.lock_ttl):
            return PassSummary("skipped")
        fired = missed = 0
        try:
            now = self.clock()
            due = self.schedules.due(now, DUE_BATCH)
            for schedule in due:
                try:
                    went, skipped = self._advance(schedule, now)
                except CodeActionsError as exc:
                    log.error("schedule %s could not be advanced: %s", schedule.id, exc.message)
                    continue
                fired += went
                missed += skipped
        finally:
            try:
                self.locks.release(SCHEDULES_LOCK, self.holder)
            except CodeActionsError as exc:
                log.warning("could not release the schedules lock (it expires): %s", exc.message)
        summary = PassSummary("done", len(due), fired, missed)
        if due:
            log.info(summary.line())
        return summary

    def _advance(self, schedule: Schedule, now: datetime) -> tuple[int, int]:
        """Claim and fire the latest occurrence when recent, move the schedule past ``now``."""
        cron = Cron.parse(schedule.cron, schedule.timezone)
        occurrences = list(cron.between(schedule.next_fire_at, now, MAX_COUNTED))
        latest = occurrences[-1] if occurrences else None
        to_fire = latest if latest is not None and now - latest <= self.grace else None
        skipped = occurrences[:-1] if to_fire is not None else occurrences
        firing = None
        if to_fire is not None:  # claimed first: a crash before advancing never fires it twice
            firing = self.schedules.claim_firing(schedule.id, to_fire, self.holder)
        moved = self.schedules.advance(
            schedule.id,
            expected_next=schedule.next_fire_at,
            next_fire_at=cron.next_after(now),
            fired=to_fire,
            missed=len(skipped),
            last_missed_at=skipped[-1] if skipped else None,
        )
        if skipped and moved:
            log.warning(
                "schedule %s missed %d occurrence(s) (last %s): no scheduler was running; "
                "not replayed",
                schedule.id,
                len(skipped),
                skipped[-1].isoformat(),
            )
        if firing is None:
            return 0, len(skipped) if moved else 0
        with self._guard:
            busy = schedule.id in self._running
            self._running.add(schedule.id)
        if busy:  # a run longer than the interval: occurrences do not pile up behind it
            self.schedules.finish_firing(firing.id, status=FiringStatus.FAILED, error=STILL_RUNNING)
            return 0, len(skipped) if moved else 0
        self.executor.submit(self._fire, schedule, firing)
        return 1, len(skipped) if moved else 0

    def _fire(self, schedule: Schedule, firing: ScheduleFiring) -> None:
        try:
            try:
                outcome = self.targets[schedule.target_type](schedule)
            except CodeActionsError as exc:
                outcome = Fired(error=exc.message)
            except Exception as exc:  # recorded on the firing, never lost
                log.exception("schedule %s: firing %s failed", schedule.id, firing.id)
                outcome = Fired(error=f"internal error: {type(exc).__name__}: {exc}")
            self.schedules.finish_firing(
                firing.id,
                status=FiringStatus.FAILED if outcome.error else FiringStatus.FIRED,
                run_id=outcome.run_id,
                execution_id=outcome.execution_id,
                error=outcome.error,
            )
            log.info(
                "schedule %s fired %s for %s: run=%s execution=%s%s",
                schedule.id,
                schedule.target_type,
                firing.scheduled_for.isoformat(),
                outcome.run_id,
                outcome.execution_id,
                f" error={outcome.error}" if outcome.error else "",
            )
        except Exception:
            log.exception("schedule %s: firing %s could not be recorded", schedule.id, firing.id)
        finally:
            with self._guard:
                self._running.discard(schedule.id)
            self.release()


def run_failure(status: RunStatus, result: str) -> str:
    """The firing's error for a run that ended failed."""
    return f"the run failed: {result}"[:2000] if status is RunStatus.FAILED else ""
