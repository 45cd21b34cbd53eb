"""The ``codeactions scheduler`` process: the cleaners on an APScheduler BlockingScheduler.

Daily at CLEANER_SCHEDULE_TIME (UTC) a cleaning pass deletes the runs and logs
older than CLEANER_RETENTION_PERIOD days, in batches, and fails abandoned
runs; a lock (Redis, else the database) lets one replica at a time do it.
Every few minutes, abandoned runs are failed on their own (one idempotent
statement, no lock needed). Every SCHEDULE_POLL_SECONDS the schedules that are
due fire (``codeactions_core.scheduling.firing``: one replica per occurrence).
SIGTERM or SIGINT stops the process once the
running pass is done.

``python -m codeactions_core.scheduler [--run-once]`` runs the same command
as ``codeactions scheduler`` (see :func:`register_command`).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from codeactions_core import __version__
from codeactions_core.errors import CodeActionsError
from codeactions_core.locks import FallbackLocks, RedisLocks, new_holder, open_locks
from codeactions_core.model import utcnow
from codeactions_core.plugins import get_plugin_manager
from codeactions_core.scheduling.firing import ScheduleFirer
from codeactions_core.services import open_store
from codeactions_core.services.run_leases import LEASE_EXPIRED
from codeactions_core.services.runs import fail_abandoned_runs
from codeactions_core.services.schema import ensure_schema_ready
from codeactions_core.settings import Settings
from codeactions_core.store import LockRepository, LogStore, RunRepository, Store

log = logging.getLogger("codeactions.scheduler")

CLEANING_LOCK = "cleaner"
CLEANING_JOB = "clean-runs-and-logs"
ABANDONED_JOB = "fail-abandoned-runs"
SCHEDULES_JOB = "fire-due-schedules"
SCHEDULES_JOB_NAME = "fire due schedules"
ABANDONED_INTERVAL = timedelta(minutes=5)
CLEANING_MISFIRE_GRACE_SECONDS = 3600  # a daily pass delayed (process paused, busy) still runs
ABANDONED_MISFIRE_GRACE_SECONDS = 60


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


@dataclass
class Cleaning:
    """What the scheduler process works on, opened from settings."""

    store: Store
    cleaner: Cleaner
    lock_kind: str

    def close(self) -> None:
        if isinstance(self.cleaner.locks, (RedisLocks, FallbackLocks)):
            self.cleaner.locks.close()
        self.store.close()


def open_cleaning(settings: Settings) -> Cleaning:
    """The store (schema checked), its log store and the lock the settings select."""
    pm = get_plugin_manager(settings)
    store = open_store(settings, pm)
    try:
        ensure_schema_ready(store)
        log_store = pm.hook.codeactions_log_store(settings=settings, store=store)
        locks = open_locks(settings, store)
    except BaseException:
        store.close()
        raise
    lock_kind = (
        f"redis (else the {store.kind} database)" if settings.redis else f"{store.kind} database"
    )
    return Cleaning(store, Cleaner.from_settings(settings, store.runs, log_store, locks), lock_kind)


def releasing(job: Callable[[], Any], release: Callable[[], None]) -> Callable[[], None]:
    """``job``, then always ``release`` (the thread's pooled database connection)."""

    def run() -> None:
        try:
            job()
        finally:
            release()

    return run


def build_scheduler(
    settings: Settings, cleaning: Cleaning, firer: ScheduleFirer | None = None
) -> BlockingScheduler:
    """A BlockingScheduler (UTC) with the daily cleaning job and the abandoned-runs job, and
    with ``firer`` the job that fires due schedules."""
    scheduler = BlockingScheduler(
        timezone=timezone.utc,
        executors={"default": ThreadPoolExecutor(max_workers=2)},
        job_defaults={"coalesce": True, "max_instances": 1},
    )
    hour, minute = settings.cleaner_schedule_time.split(":")
    release = cleaning.store.release
    scheduler.add_job(
        releasing(cleaning.cleaner.clean, release),
        CronTrigger(hour=int(hour), minute=int(minute), timezone=timezone.utc),
        id=CLEANING_JOB,
        name=f"clean runs and logs daily at {settings.cleaner_schedule_time} UTC",
        misfire_grace_time=CLEANING_MISFIRE_GRACE_SECONDS,
    )
    every = min(int(ABANDONED_INTERVAL.total_seconds()), settings.run_lease_seconds)
    scheduler.add_job(
        releasing(lambda: fail_abandoned(cleaning.store.runs), release),
        IntervalTrigger(seconds=every, timezone=timezone.utc),
        id=ABANDONED_JOB,
        name=f"fail abandoned runs every {every}s",
        misfire_grace_time=ABANDONED_MISFIRE_GRACE_SECONDS,
    )
    if firer is not None:
        logging.getLogger("apscheduler.executors.default").addFilter(QuietJob(SCHEDULES_JOB_NAME))
        scheduler.add_job(
            releasing(firer.tick, release),
            IntervalTrigger(seconds=settings.schedule_poll_seconds, timezone=timezone.utc),
            id=SCHEDULES_JOB,
            name=f"{SCHEDULES_JOB_NAME} every {settings.schedule_poll_seconds}s",
            misfire_grace_time=max(1, int(settings.schedule_poll_seconds)),
        )
    return scheduler


class QuietJob(logging.Filter):
    """Drops APScheduler's per-run lines of a frequent job (every few seconds) whose passes
    log what they did themselves; its warnings and errors still pass."""

    def __init__(self, job_name: str) -> None:
        super().__init__()
        self._job_name = job_name

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or self._job_name not in record.getMessage()


def describe_schedule(scheduler: BlockingScheduler) -> str:
    """Every job with its next run time, for the log."""
    return "; ".join(
        f"{job.name}: next run {job.next_run_time.isoformat() if job.next_run_time else 'never'}"
        for job in scheduler.get_jobs()
    )


class GracefulStop:
    """Stops a started scheduler from a helper thread, waiting for running jobs to finish.

    ``request`` is safe as a signal handler: it only starts the thread (the
    scheduler's shutdown takes locks the interrupted main thread may hold).
    A request made before the scheduler started is carried out once it has.
    """

    def __init__(self, scheduler: BlockingScheduler) -> None:
        self._scheduler = scheduler
        self._requested = False
        self._thread: threading.Thread | None = None
        scheduler.add_listener(self._on_started, EVENT_SCHEDULER_STARTED)

    def request(self, signum: int | None = None, frame: object = None) -> None:
        if signum is not None and not self._requested:
            name = signal.Signals(signum).name
            log.info("received %s: stopping once the running pass is done", name)
        self._requested = True
        if self._scheduler.running and self._thread is None:
            self._thread = threading.Thread(target=self._shutdown, name="scheduler-stop")
            self._thread.start()

    def wait(self) -> None:
        """Return once the scheduler has stopped and its running jobs have finished."""
        if self._thread is not None:
            self._thread.join()

    def _on_started(self, event: object) -> None:
        if self._requested:
            self.request()

    def _shutdown(self) -> None:
        try:
            self._scheduler.shutdown(wait=True)
        except SchedulerNotRunningError:
            pass


def run_until_stopped(scheduler: BlockingScheduler) -> None:
    """Run the scheduler in this (main) thread until SIGTERM or SIGINT."""
    stop = GracefulStop(scheduler)
    scheduler.add_listener(
        lambda event: log.info("scheduler started (UTC): %s", describe_schedule(scheduler)),
        EVENT_SCHEDULER_STARTED,
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop.request)
    scheduler.start()
    stop.wait()
    log.info("scheduler stopped")


def scheduler_command(settings: Settings, args: argparse.Namespace) -> int:
    """``codeactions scheduler [--run-once]``."""
    from codeactions_core.scheduling.targets import open_firing  # imports the run services

    cleaning = open_cleaning(settings)
    firing = None
    try:
        if getattr(cleaning.store, "schedules", None) is not None:
            firing = open_firing(settings, cleaning.store, cleaning.cleaner.locks)
        if args.run_once:
            print(cleaning.cleaner.clean().line(), flush=True)
            if firing is not None:
                print(firing.firer.tick().line(), flush=True)
            return 0
        log.info(
            "codeactions %s scheduler: %s store, %s lock, holder %s",
            __version__, cleaning.store.kind, cleaning.lock_kind, cleaning.cleaner.holder,
        )
        run_until_stopped(build_scheduler(settings, cleaning, firing.firer if firing else None))
        return 0
    finally:
        if firing is not None:
            firing.close()
        cleaning.close()


def register_command(commands: Any) -> argparse.ArgumentParser:
    """Add ``scheduler`` to the CLI's sub-parsers (``argparse`` ``add_subparsers()`` result)."""
    parser = commands.add_parser(
        "scheduler", help="run the cleaners on their schedule until SIGTERM (one replica per pass)"
    )
    parser.add_argument(
        "--run-once", action="store_true",
        help="do one cleaning pass and one pass over due schedules now, print their summaries "
        "and exit",
    )
    parser.set_defaults(handler=scheduler_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m codeactions_core.scheduler [--run-once]``: ``codeactions scheduler``."""
    from codeactions_core.cli import main as cli_main

    return cli_main(["scheduler", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
