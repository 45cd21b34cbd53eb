"""``codeactions scheduler [--run-once]``: the cleaners on an APScheduler BlockingScheduler.

Daily at CLEANER_SCHEDULE_TIME (UTC) a cleaning pass (``codeactions_core.services.cleaning``)
deletes old runs and logs, one replica at a time. Every few minutes, abandoned runs are
failed on their own. Every SCHEDULE_POLL_SECONDS the schedules that are due fire
(``codeactions_core.services.schedule_firing``: one replica per occurrence). SIGTERM or SIGINT
stops the process once the running pass is done.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

import pluggy
from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from codeactions_core import __version__
from codeactions_core.locks import FallbackLocks, RedisLocks, open_locks
from codeactions_core.plugins import get_plugin_manager
from codeactions_core.services.cleaning import Cleaner, fail_abandoned
from codeactions_core.services.schedule_firing import ScheduleFirer
from codeactions_core.settings import Settings
from codeactions_core.store import Store
from codeactions_core.wiring import open_firing, open_log_store, ready_store

log = logging.getLogger("codeactions.scheduler")

CLEANING_JOB = "clean-runs-and-logs"
ABANDONED_JOB = "fail-abandoned-runs"
SCHEDULES_JOB = "fire-due-schedules"
SCHEDULES_JOB_NAME = "fire due schedules"
ABANDONED_INTERVAL = timedelta(minutes=5)
CLEANING_MISFIRE_GRACE_SECONDS = 3600  # a daily pass delayed (process paused, busy) still runs
ABANDONED_MISFIRE_GRACE_SECONDS = 60


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


def open_cleaning(settings: Settings, pm: pluggy.PluginManager | None = None) -> Cleaning:
    """The store (schema checked), its log store and the lock the settings select."""
    pm = pm or get_plugin_manager(settings)
    store = ready_store(settings, pm)
    try:
        log_store = open_log_store(settings, pm, store)
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
        timezone=UTC,
        executors={"default": ThreadPoolExecutor(max_workers=2)},
        job_defaults={"coalesce": True, "max_instances": 1},
    )
    hour, minute = settings.cleaner_schedule_time.split(":")
    release = cleaning.store.release
    scheduler.add_job(
        releasing(cleaning.cleaner.clean, release),
        CronTrigger(hour=int(hour), minute=int(minute), timezone=UTC),
        id=CLEANING_JOB,
        name=f"clean runs and logs daily at {settings.cleaner_schedule_time} UTC",
        misfire_grace_time=CLEANING_MISFIRE_GRACE_SECONDS,
    )
    every = min(int(ABANDONED_INTERVAL.total_seconds()), settings.run_lease_seconds)
    scheduler.add_job(
        releasing(lambda: fail_abandoned(cleaning.store.runs), release),
        IntervalTrigger(seconds=every, timezone=UTC),
        id=ABANDONED_JOB,
        name=f"fail abandoned runs every {every}s",
        misfire_grace_time=ABANDONED_MISFIRE_GRACE_SECONDS,
    )
    if firer is not None:
        logging.getLogger("apscheduler.executors.default").addFilter(QuietJob(SCHEDULES_JOB_NAME))
        scheduler.add_job(
            releasing(firer.tick, release),
            IntervalTrigger(seconds=settings.schedule_poll_seconds, timezone=UTC),
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


def run(settings: Settings, args: argparse.Namespace) -> int:
    """``codeactions scheduler [--run-once]``."""
    pm = get_plugin_manager(settings)
    cleaning = open_cleaning(settings, pm)
    firing = None
    try:
        if getattr(cleaning.store, "schedules", None) is not None:
            firing = open_firing(settings, cleaning.store, cleaning.cleaner.locks, pm)
        if args.run_once:
            print(cleaning.cleaner.clean().line(), flush=True)
            if firing is not None:
                print(firing.firer.tick().line(), flush=True)
            return 0
        log.info(
            "codeactions %s scheduler: %s store, %s lock, holder %s",
            __version__,
            cleaning.store.kind,
            cleaning.lock_kind,
            cleaning.cleaner.holder,
        )
        run_until_stopped(build_scheduler(settings, cleaning, firing.firer if firing else None))
        return 0
    finally:
        if firing is not None:
            firing.close()
        cleaning.close()


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``scheduler`` to the CLI's sub-parsers."""
    parser = commands.add_parser(
        "scheduler", help="run the cleaners on their schedule until SIGTERM (one replica per pass)"
    )
    parser.add_argument(
        "--run-once",
        action="store_true",
        help="do one cleaning pass and one pass over due schedules now, print their summaries "
        "and exit",
    )
    parser.set_defaults(handler=run)
