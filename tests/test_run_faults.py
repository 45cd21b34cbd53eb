"""No run left hanging, and bounded waits (issue 13): a PostgreSQL server of this module's
own is crashed, stopped and frozen, server processes are SIGKILLed, and every run still
ends terminal, with the answer its client got."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import psycopg2
import pytest
import requests

from codeactions_core.model import CodeType, NewCode, RunStatus, utcnow
from codeactions_core.plugins import get_plugin_manager
from codeactions_core.services.run_leases import LEASE_EXPIRED, SERVER_RESTARTED
from codeactions_core.settings import Settings
from codeactions_core.store import NewRun
from codeactions_core.testing.server import run_cli, start_server
from codeactions_core.wiring import open_store
from tests.support.postgres import wait_until
from tests.support.processes import children

pytestmark = [pytest.mark.e2e, pytest.mark.heavy]

SLEEPER = (
    "import time\ndef Run(engine):\n    time.sleep({seconds})\n    engine.result.set('{result}')\n"
)


def settings_for(pg, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "FLOWS_CODE_ACTIONS_DB_TYPE": "postgres",
        "FLOWS_CODE_ACTIONS_DB_URI": pg.uri(),
        "FLOWS_CODE_ACTIONS_DATA_DIR": str(data_dir),
        "FLOWS_CODE_ACTIONS_DB_CONNECT_TIMEOUT": "2",
        "FLOWS_CODE_ACTIONS_DB_STATEMENT_TIMEOUT": "2",
        "FLOWS_CODE_ACTIONS_RUN_LEASE_SECONDS": "3",
        **extra,
    }


@pytest.fixture(scope="module")
def migrated(private_postgres, tmp_path_factory):
    settings = settings_for(private_postgres, tmp_path_factory.mktemp("migrate"))
    done = run_cli("migrate", settings=settings)
    assert done.returncode == 0, done.stderr
    return private_postgres


@pytest.fixture(scope="module")
def server(migrated, tmp_path_factory):
    settings = settings_for(migrated, tmp_path_factory.mktemp("data"))
    running = start_server(settings, tmp_path_factory.mktemp("logs"), workers=1)
    yield running
    running.stop()


def create(server, source: str, timeout: int = 30) -> str:
    answer = requests.post(
        server.url("/code"),
        data=source.encode(),
        timeout=30,
        params={
            "name": "f",
            "language": "python",
            "type": "endpoint",
            "project_uuid": "P",
            "timeout": timeout,
        },
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def runs_of(pg, code_id: str) -> list[tuple[str, str]]:
    """(status, result) of a code's runs, read straight from the database ([] while down)."""
    try:
        connection = psycopg2.connect(pg.uri(), connect_timeout=2)
    except psycopg2.OperationalError:
        return []
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT status, COALESCE(result, '') FROM coderuns WHERE code_id = %s "
                "ORDER BY created_at",
                (code_id,),
            )
            return cursor.fetchall()
    except psycopg2.OperationalError:
        return []
    finally:
        connection.close()


def call_in_background(server, code_id: str) -> tuple[threading.Thread, dict]:
    answers: dict = {}

    def call() -> None:
        try:
            answer = requests.get(server.url(f"/action/endpoint/{code_id}"), timeout=60)
            answers["answer"] = (answer.status_code, answer.text)
        except requests.RequestException as exc:
            answers["error"] = exc

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread, answers


def test_runs_of_a_killed_worker_are_failed_within_seconds(server, migrated):
    code_id = create(server, SLEEPER.format(seconds=20, result="late"))
    calls = [call_in_background(server, code_id) for _ in range(2)]
    assert wait_until(lambda: [s for s, _ in runs_of(migrated, code_id)] == ["started"] * 2, 30)
    for worker in children(server.process.pid):
        os.kill(worker, signal.SIGKILL)
    killed = time.monotonic()
    runs = wait_until(lambda: {s for s, _ in runs_of(migrated, code_id)} == {"failed"}, 30)
    print(f"\nfailed {time.monotonic() - killed:.1f}s after the worker SIGKILL")
    assert runs, runs_of(migrated, code_id)
    assert {result for _, result in runs_of(migrated, code_id)} == {LEASE_EXPIRED}
    for thread, _ in calls:
        thread.join(30)


def test_a_restarted_serve_fails_its_predecessors_runs_at_start(migrated, tmp_path):
    # A lease far longer than the test: only the restart can fail these runs.
    settings = settings_for(migrated, tmp_path / "data", FLOWS_CODE_ACTIONS_RUN_LEASE_SECONDS="600")
    first = start_server(settings, tmp_path, workers=2)
    try:
        code_id = create(first, SLEEPER.format(seconds=20, result="late"))
        for _ in range(2):
            call_in_background(first, code_id)
        assert wait_until(lambda: [s for s, _ in runs_of(migrated, code_id)] == ["started"] * 2, 30)
    finally:
        for pid in [first.process.pid, *children(first.process.pid)]:
            os.kill(pid, signal.SIGKILL)
        first.process.wait()
    assert [s for s, _ in runs_of(migrated, code_id)] == ["started"] * 2
    second = start_server(settings, tmp_path, workers=1)
    try:  # failed before the new server answers anything
        assert runs_of(migrated, code_id) == [("failed", SERVER_RESTARTED)] * 2
    finally:
        second.stop()


def test_runs_answered_200_stay_completed_after_a_database_crash(server, migrated):
    code_id = create(server, SLEEPER.format(seconds=0, result="done"))
    session = requests.Session()
    answers = [
        session.get(server.url(f"/action/endpoint/{code_id}"), timeout=30) for _ in range(15)
    ]
    assert [(a.status_code, a.text) for a in answers] == [(200, "done")] * 15
    migrated.crash()  # unflushed (asynchronously committed) WAL is lost
    migrated.resume()
    assert runs_of(migrated, code_id) == [("completed", "done")] * 15
    back = time.monotonic()
    assert wait_serving(server, code_id, "done")
    print(f"\nrunning again {time.monotonic() - back:.1f}s after the database restarted")


def wait_serving(server, code_id: str, text: str) -> bool:
    """Poll until the code answers ``text`` again (stale pooled connections fail once)."""

    def answers() -> bool:
        try:
            return requests.get(server.url(f"/action/endpoint/{code_id}"), timeout=30).text == text
        except requests.RequestException:
            return False

    return wait_until(answers, 30)


def test_a_run_whose_database_went_away_answers_and_is_recorded_when_it_returns(server, migrated):
    code_id = create(server, SLEEPER.format(seconds=3, result="kept"))
    thread, answers = call_in_background(server, code_id)
    assert wait_until(lambda: runs_of(migrated, code_id) == [("started", "")], 30)
    migrated.stop("fast")
    try:
        thread.join(60)
        assert answers.get("answer") == (200, "kept"), answers
    finally:
        migrated.resume()
    back = time.monotonic()
    assert wait_until(lambda: runs_of(migrated, code_id) == [("completed", "kept")], 30), runs_of(
        migrated, code_id
    )
    print(f"\nrecorded {time.monotonic() - back:.1f}s after the database returned")
    assert wait_serving(server, code_id, "kept")


def test_a_frozen_database_answers_503_within_the_timeout(server, migrated):
    code_id = create(server, SLEEPER.format(seconds=0, result="ok"))
    assert requests.get(server.url(f"/code/{code_id}"), timeout=30).status_code == 200
    migrated.freeze()
    try:
        started = time.monotonic()
        frozen = requests.get(server.url(f"/code/{code_id}"), timeout=60)
        waited = time.monotonic() - started
        assert frozen.status_code == 503, frozen.text
        assert "database unavailable" in frozen.json()["message"]
    finally:
        migrated.thaw()
    thawed = time.monotonic()
    assert wait_serving(server, code_id, "ok")
    print(
        f"\n503 after {waited:.1f}s frozen; "
        f"running again {time.monotonic() - thawed:.1f}s after thaw"
    )


@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_scheduler_run_once_without_redis_uses_the_database_lock(private_redis, tmp_path, fault):
    settings = {
        "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path),
        "FLOWS_CODE_ACTIONS_REDIS": private_redis.url,
    }
    store = open_store(Settings(data_dir=str(tmp_path)), get_plugin_manager(Settings()))
    try:
        store.migrate()
        code = store.codes.create(
            NewCode(
                name="c",
                type=CodeType.ENDPOINT,
                source="x",
                language="python",
                project_uuid="P",
                timeout=10,
            )
        )
        left = store.runs.create(
            NewRun(
                code_id=code.id, status=RunStatus.STARTED, owner="dead:1", lease_expires_at=utcnow()
            )
        )
        private_redis.kill() if fault == "killed" else private_redis.freeze()
        done = run_cli("scheduler", "--run-once", settings=settings)
        assert done.returncode == 0, done.stderr
        assert "status=done" in done.stdout and "abandoned_failed=1" in done.stdout
        assert "taking the 'cleaner' lock in the database instead" in done.stderr
        assert (store.runs.get(left.id).status, store.runs.get(left.id).result) == (
            RunStatus.FAILED,
            LEASE_EXPIRED,
        )
    finally:
        store.close()
