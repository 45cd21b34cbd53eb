"""The scheduler process: cleaning passes, the lock between replicas, the schedule and stopping.

Against the real PostgreSQL and Redis. Rows are backdated with SQL, since the
repositories set ``created_at`` themselves.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from codeactions_core.cli.scheduler import Cleaning, GracefulStop, open_cleaning
from codeactions_core.cli.scheduler import register as register_command
from codeactions_core.cli.scheduler import run as scheduler_command
from codeactions_core.errors import StoreError
from codeactions_core.locks import KEY_PREFIX, RedisLocks
from codeactions_core.plugins import get_plugin_manager
from codeactions_core.services.cleaning import CLEANING_LOCK
from codeactions_core.settings import Settings
from codeactions_core.testing.fixtures import require_service
from codeactions_core.testing.lock_contract import LockContract
from codeactions_core.testing.server import child_env, stop_process
from codeactions_core.wiring import open_store

psycopg2 = pytest.importorskip("psycopg2")
redis = pytest.importorskip("redis")

OLD_DAYS, RECENT_DAYS = 40, 2  # the default retention is 30 days
RECENT = (4, 5)  # runs and logs every test keeps
ONLY_RECENT_LEFT = {"coderuns": (0, 4), "codelogs": (0, 5)}
DEADLINE_SECONDS = 30.0
SUMMARY = re.compile(r"^cleaning pass (.*)$", re.MULTILINE)


# -- data -------------------------------------------------------------------------------


def execute(uri: str, statement: str, params: tuple = ()) -> list[tuple]:
    connection = psycopg2.connect(uri)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def seed(uri: str, *, old_runs: int, old_logs: int) -> None:
    """Runs and logs of one code created OLD_DAYS ago, plus RECENT runs and logs."""
    for days, runs, logs in ((OLD_DAYS, old_runs, old_logs), (RECENT_DAYS, *RECENT)):
        execute(
            uri,
            "INSERT INTO coderuns (code_id, status, created_at, updated_at) "
            "SELECT '11111111-1111-1111-1111-111111111111', 'completed', "
            "now() - make_interval(days => %s), now() - make_interval(days => %s) "
            "FROM generate_series(1, %s)",
            (days, days, runs),
        )
        execute(
            uri,
            "INSERT INTO codelogs (run_id, code_id, type, content, created_at, updated_at) "
            "SELECT gen_random_uuid(), '11111111-1111-1111-1111-111111111111', 'info', 'line', "
            "now() - make_interval(days => %s), now() - make_interval(days => %s) "
            "FROM generate_series(1, %s)",
            (days, days, logs),
        )


def remaining(uri: str) -> dict[str, tuple[int, int]]:
    """Per table: (rows older than the retention, all rows)."""
    counts = {}
    for table in ("coderuns", "codelogs"):
        [(old, total)] = execute(
            uri,
            "SELECT count(*) FILTER (WHERE created_at < now() - interval '30 days'), count(*) "
            f"FROM {table}",
        )
        counts[table] = (old, total)
    return counts


def summary_of(text: str) -> dict[str, str]:
    """The key=value pairs of the one summary line in ``text``."""
    lines = SUMMARY.findall(text)
    assert len(lines) == 1, text
    return dict(pair.split("=", 1) for pair in lines[0].split())


def deleted(summary: dict[str, str]) -> tuple[int, int]:
    return int(summary["runs_deleted"]), int(summary["logs_deleted"])


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def database(new_postgres_database) -> str:
    """A fresh, migrated PostgreSQL database."""
    uri = new_postgres_database("ca_sched")
    settings = Settings(db_type="postgres", db_uri=uri)
    store = open_store(settings, get_plugin_manager(settings))
    try:
        store.migrate()
    finally:
        store.close()
    return uri


@pytest.fixture
def lock_free_redis(suite_env, worker_id: str) -> Iterator[str]:
    """URL of the test Redis, without a cleaning lock left over: a database of its own per
    pytest-xdist process, whose tests would otherwise take each other's lock."""
    require_service("Redis", suite_env.redis_url, 6379)
    number = int(worker_id.removeprefix("gw")) + 1 if worker_id.startswith("gw") else 0
    url = urlsplit(suite_env.redis_url)._replace(path=f"/{number}").geturl()
    client = redis.Redis.from_url(url)
    client.delete(KEY_PREFIX + CLEANING_LOCK)
    yield url
    client.delete(KEY_PREFIX + CLEANING_LOCK)
    client.close()


@pytest.fixture(params=["redis", "database"])
def lock_settings(request) -> dict[str, str]:
    """The settings selecting each lock flavour (no Redis URL: the database's lock)."""
    if request.param == "redis":
        return {"FLOWS_CODE_ACTIONS_REDIS": request.getfixturevalue("lock_free_redis")}
    return {}


def process_settings(database: str, lock_settings: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        "FLOWS_CODE_ACTIONS_DB_TYPE": "postgres",
        "FLOWS_CODE_ACTIONS_DB_URI": database,
        **lock_settings,
        **extra,
    }


@pytest.fixture
def cleaning_for(database, lock_settings) -> Iterator:
    """Open the scheduler's own wiring in this process (closed afterwards)."""
    opened: list[Cleaning] = []

    def open_(**extra: str) -> Cleaning:
        environment = process_settings(database, lock_settings, **extra)
        opened.append(open_cleaning(Settings.from_env(environment)))
        return opened[-1]

    yield open_
    for cleaning in opened:
        cleaning.close()


def start_scheduler(
    settings: dict[str, str], *args: str, stderr=subprocess.PIPE
) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "codeactions_core.cli", "scheduler", *args],
        env=child_env(settings),
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


def finish(process: subprocess.Popen) -> str:
    """Wait for a ``--run-once`` process; its stdout (it must exit 0)."""
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    return stdout


# -- replicas and the lock --------------------------------------------------------------


def test_two_replicas_started_together_delete_every_old_row_once(database, lock_settings):
    seed(database, old_runs=300, old_logs=400)
    settings = process_settings(database, lock_settings, FLOWS_CODE_ACTIONS_CLEANER_BATCH_SIZE="7")
    # Hold coderuns so that whichever replica takes the cleaning lock blocks on its first
    # delete while holding it: the other must then find the lock taken and skip.
    blocker = psycopg2.connect(database)
    try:
        with blocker.cursor() as cursor:
            cursor.execute("LOCK TABLE coderuns IN ACCESS EXCLUSIVE MODE")
        replicas = [start_scheduler(settings, "--run-once") for _ in range(2)]
        deadline = time.monotonic() + DEADLINE_SECONDS
        while all(process.poll() is None for process in replicas) and time.monotonic() < deadline:
            time.sleep(0.05)  # polling for the first replica to exit
        finished = [process for process in replicas if process.poll() is not None]
        assert len(finished) == 1, "exactly one replica must be done while the other holds the lock"
        (loser,) = finished
        (winner,) = [process for process in replicas if process is not loser]
        skipped = summary_of(finish(loser))
        assert skipped["status"] == "skipped" and deleted(skipped) == (0, 0)
        blocker.commit()
        done = summary_of(finish(winner))
    finally:
        blocker.close()
        for process in replicas:
            stop_process(process)
    assert done["status"] == "done" and deleted(done) == (300, 400)
    assert int(done["batches"]) == 300 // 7 + 1 + 400 // 7 + 1
    assert remaining(database) == ONLY_RECENT_LEFT


def test_a_replica_skips_while_another_holds_the_lock(database, lock_settings, cleaning_for):
    seed(database, old_runs=3, old_logs=2)
    other = cleaning_for().cleaner
    assert other.locks.try_acquire(CLEANING_LOCK, "other-replica", timedelta(minutes=5))
    settings = process_settings(database, lock_settings)

    skipped = summary_of(finish(start_scheduler(settings, "--run-once")))
    assert skipped["status"] == "skipped" and deleted(skipped) == (0, 0)
    assert remaining(database) == {"coderuns": (3, 7), "codelogs": (2, 7)}

    assert other.locks.release(CLEANING_LOCK, "other-replica")
    done = summary_of(finish(start_scheduler(settings, "--run-once")))
    assert done["status"] == "done" and deleted(done) == (3, 2)
    assert other.locks.try_acquire(CLEANING_LOCK, "after", timedelta(minutes=5))  # released again


def test_a_crashed_holders_lock_is_taken_over_once_it_expires(database, cleaning_for):
    seed(database, old_runs=5, old_logs=6)
    cleaner = cleaning_for().cleaner
    ttl = timedelta(seconds=1)
    started = time.monotonic()
    assert cleaner.locks.try_acquire(CLEANING_LOCK, "crashed-replica", ttl)  # never released

    assert cleaner.clean().status == "skipped"
    deadline = time.monotonic() + DEADLINE_SECONDS
    while (summary := cleaner.clean()).status == "skipped":
        assert time.monotonic() < deadline, "the crashed holder's lock never expired"
        time.sleep(0.05)  # polling interval, not synchronisation
    assert time.monotonic() - started >= ttl.total_seconds() * 0.9
    assert (summary.runs_deleted, summary.logs_deleted) == (5, 6)
    assert remaining(database) == ONLY_RECENT_LEFT


@pytest.mark.parametrize("lock_settings", ["database"], indirect=True)
def test_a_pass_deletes_in_batches_until_one_comes_back_short(database, cleaning_for):
    seed(database, old_runs=20, old_logs=15)
    summary = cleaning_for(FLOWS_CODE_ACTIONS_CLEANER_BATCH_SIZE="7").cleaner.clean()
    assert (summary.status, summary.runs_deleted, summary.logs_deleted) == ("done", 20, 15)
    assert summary.batches == 3 + 3  # runs 7, 7, 6; logs 7, 7, 1
    assert remaining(database) == ONLY_RECENT_LEFT


@pytest.mark.parametrize("lock_settings", ["database"], indirect=True)
def test_a_pass_fails_abandoned_runs(database, cleaning_for):
    execute(
        database,
        "INSERT INTO coderuns (code_id, status, created_at, updated_at) VALUES "
        "('11111111-1111-1111-1111-111111111111', 'started', now() - interval '1 day', "
        "now() - interval '1 day')",
    )
    summary = cleaning_for().cleaner.clean()
    assert summary.abandoned_failed == 1
    assert execute(database, "SELECT status FROM coderuns") == [("failed",)]


# -- the long-running process -----------------------------------------------------------


def wait_for_text(path: Path, text: str, process: subprocess.Popen) -> str:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        content = path.read_text(errors="replace")
        if text in content:
            return content
        assert process.poll() is None, f"the scheduler exited with {process.returncode}:\n{content}"
        time.sleep(0.05)  # polling interval, not synchronisation
    stop_process(process)
    content = path.read_text(errors="replace")
    pytest.fail(f"{text!r} not logged within {DEADLINE_SECONDS}s:\n{content}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("lock_settings", ["database"], indirect=True)
def test_the_scheduler_logs_its_schedule_and_stops_on_a_signal(
    database, lock_settings, tmp_path, signum
):
    log_path = tmp_path / "scheduler.log"
    settings = process_settings(
        database, lock_settings, FLOWS_CODE_ACTIONS_CLEANER_SCHEDULE_TIME="3:17"
    )
    with open(log_path, "w") as log_file:
        process = start_scheduler(settings, stderr=log_file)
    try:
        started = wait_for_text(log_path, "scheduler started", process)
        daily = r"clean runs and logs daily at 03:17 UTC: next run \S+T03:17:00\+00:00"
        assert re.search(daily, started)
        assert re.search(r"fail abandoned runs every 15s: next run \S+", started)
        process.send_signal(signum)
        assert process.wait(timeout=10) == 0
    finally:
        stop_process(process)
    assert "scheduler stopped" in log_path.read_text()


def test_stopping_lets_the_running_pass_finish():
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(timezone="UTC")
    running, proceed, finished = threading.Event(), threading.Event(), threading.Event()

    def long_pass() -> None:
        running.set()
        proceed.wait(DEADLINE_SECONDS)  # the pass's work, until the test lets it end
        finished.set()

    # recurring like the real jobs (a one-off job races APScheduler's own shutdown)
    scheduler.add_job(long_pass, "interval", hours=1, next_run_time=datetime.now(UTC))
    stop = GracefulStop(scheduler)
    loop = threading.Thread(target=scheduler.start)
    loop.start()
    assert running.wait(DEADLINE_SECONDS)
    stop.request()
    assert not finished.is_set()
    proceed.set()
    stop.wait()
    loop.join(DEADLINE_SECONDS)
    assert finished.is_set() and not loop.is_alive() and not scheduler.running


def test_a_stop_requested_before_start_is_carried_out_once_started():
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(timezone="UTC")
    stop = GracefulStop(scheduler)
    stop.request()
    loop = threading.Thread(target=scheduler.start)
    loop.start()
    loop.join(DEADLINE_SECONDS)
    stop.wait()
    assert not loop.is_alive() and not scheduler.running


def test_register_command_adds_scheduler_with_run_once():
    parser = argparse.ArgumentParser()
    register_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["scheduler", "--run-once"])
    assert (args.command, args.run_once, args.handler) == ("scheduler", True, scheduler_command)
    assert parser.parse_args(["scheduler"]).run_once is False


# -- the Redis lock ---------------------------------------------------------------------


class TestRedisLocks(LockContract):
    @pytest.fixture
    def locks(self, lock_free_redis) -> Iterator[RedisLocks]:
        locks = RedisLocks.from_url(lock_free_redis)
        yield locks
        locks.close()


def test_an_unreachable_redis_is_a_store_error_naming_no_url():
    locks = RedisLocks.from_url("redis://:secret@127.0.0.1:1/0")
    try:
        with pytest.raises(StoreError) as raised:
            locks.try_acquire(CLEANING_LOCK, "a", timedelta(seconds=5))
        assert "secret" not in raised.value.message and "Redis" in raised.value.message
    finally:
        locks.close()
