"""Cleaning old runs and logs, one replica at a time: what ``codeactions scheduler`` does daily.

A cleaning pass deletes the runs and logs older than CLEANER_RETENTION_PERIOD days, in
batches, and fails abandoned runs; a lock (Redis, else the database) lets one replica at
a time do it. Failing abandoned runs alone (one idempotent statement, no lock needed) is
the frequent job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from codeactions_core.errors import CodeActionsError
from codeactions_core.locks import new_holder
from codeactions_core.model import utcnow
from codeactions_core.services.run_leases import LEASE_EXPIRED
from codeactions_core.services.runs import fail_abandoned_runs
from codeactions_core.settings import Settings
from codeactions_core.store import LockRepository, LogStore, RunRepository

log = logging.getLogger("codeactions.scheduler")

CLEANING_LOCK = "cleaner"


@dataclass(frozen=True)
class CleaningSummary:
    """What one cleaning pass did; ``batches`` counts its delete statements."""

    status: str  # "done", or "skipped" when another replica held the lock
    runs_deleted: int = 0
    logs_deleted: int = 0
    batches: int = 0
    abandoned_failed: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        """One log line, ``key=value`` pairs."""
        return (
            f"cleaning pass status={self.status} runs_deleted={self.runs_deleted} "
            f"logs_deleted={self.logs_deleted} batches={self.batches} "
            f"abandoned_failed={self.abandoned_failed} seconds={self.seconds:.3f}"
        )


def delete_in_batches(
    delete: Callable[[datetime, int], int], cutoff: datetime, batch_size: int
) -> tuple[int, int]:
    """Call ``delete(cutoff, batch_size)`` until a batch comes back short; (deleted, statements)."""
    deleted = statements = 0
    while True:
        count = delete(cutoff, batch_size)
        deleted += count
        statements += 1
        if count < batch_size:
            return deleted, statements


@dataclass
class Cleaner:
    """One cleaning pass at a time across all replicas."""

    runs: RunRepository
    logs: LogStore
    locks: LockRepository
    retention: timedelta
    batch_size: int
    lock_ttl: timedelta
    holder: str = field(default_factory=new_holder)

    @classmethod
    def from_settings(
        cls, settings: Settings, runs: RunRepository, logs: LogStore, locks: LockRepository
    ) -> Cleaner:
        return cls(
            runs=runs,
            logs=logs,
            locks=locks,
            retention=timedelta(days=settings.cleaner_retention_period),
            batch_size=settings.cleaner_batch_size,
            lock_ttl=timedelta(seconds=settings.cleaner_lock_seconds),
        )

    def clean(self) -> CleaningSummary:
        """Take the lock or skip; delete old runs and logs in batches; fail abandoned runs."""
        started = time.perf_counter()
        if not self.locks.try_acquire(CLEANING_LOCK, self.holder, self.lock_ttl):
            summary = CleaningSummary("skipped", seconds=time.perf_counter() - started)
            log.info("%s (another replica holds the lock)", summary.line())
            return summary
        try:
            cutoff = utcnow() - self.retention
            runs, run_batches = delete_in_batches(
                self.runs.delete_older_than, cutoff, self.batch_size
            )
            logs, log_batches = delete_in_batches(
                self.logs.delete_older_than, cutoff, self.batch_size
            )
            abandoned = fail_all_abandoned(self.runs)
        finally:
            self._release()
        summary = CleaningSummary(
            "done", runs, logs, run_batches + log_batches, abandoned, time.perf_counter() - started
        )
        log.info("%s (older than %s)", summary.line(), cutoff.isoformat())
        return summary

    def _release(self) -> None:
        try:
            self.locks.release(CLEANING_LOCK, self.holder)
        except CodeActionsError as exc:  # it expires by itself; the pass's own error matters more
            log.warning("could not release the cleaning lock (it expires): %s", exc.message)


def fail_all_abandoned(runs: RunRepository) -> int:
    """Fail the runs of dead processes (expired leases) and old ownerless unfinished runs."""
    return runs.fail_expired_leases(utcnow(), LEASE_EXPIRED) + fail_abandoned_runs(runs)


def fail_abandoned(runs: RunRepository) -> int:
    """The frequent job: fail abandoned runs, log how many and how long it took."""
    started = time.perf_counter()
    failed = fail_all_abandoned(runs)
    log.info("abandoned runs pass failed=%d seconds=%.3f", failed, time.perf_counter() - started)
    return failed
