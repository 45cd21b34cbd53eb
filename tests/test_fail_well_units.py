"""Issue 13 in-process: failing the runs a stopping process owns, storage full → 503,
Redis killed → degraded but ready, repeated errors throttled in the log."""

from __future__ import annotations

import errno
import logging
import os
import threading
import time

import pytest

from codeactions_core.drain import InFlightRuns, TrackedRuns, fail_in_flight, finish_draining
from codeactions_core.faults import storage_full
from codeactions_core.log_config import Throttle
from codeactions_core.model import RunStatus
from codeactions_core.settings import Settings
from codeactions_core.store import NewRun
from codeactions_core.testing.api import api_client
from codeactions_core.testing.server import free_port
from tests.support.processes import MountRefused, small_tmpfs
from tests.support.redis_server import PrivateRedis

HELLO = 'def Run(engine):\n    engine.result.set("hi")\n'
CODE = {"name": "a", "language": "python", "type": "endpoint", "project_uuid": "P"}


def test_runs_in_flight_are_failed_server_shutting_down_and_ended_ones_left_alone(
    services, create_code
):
    code_id = create_code(HELLO)["id"]
    in_flight = InFlightRuns()
    runs = TrackedRuns(services.store.runs, in_flight)
    started = runs.create(NewRun(code_id=code_id, status=RunStatus.STARTED))
    queued = runs.create(NewRun(code_id=code_id, status=RunStatus.QUEUED))
    ended = runs.create(NewRun(code_id=code_id, status=RunStatus.STARTED))
    runs.update(ended.id, status=RunStatus.COMPLETED, result="done")
    assert in_flight.snapshot() == sorted([started.id, queued.id])

    assert finish_draining(in_flight, runs, deadline=time.monotonic() + 0.05) == 2
    stored = {run.id: run for run in services.store.runs.list_by_code(code_id)}
    for run in (started, queued):
        assert (stored[run.id].status, stored[run.id].result) == (
            RunStatus.FAILED,
            "server shutting down",
        )
    assert (stored[ended.id].status, stored[ended.id].result) == (RunStatus.COMPLETED, "done")
    assert in_flight.snapshot() == [] and fail_in_flight(runs, in_flight) == 0


def test_a_run_whose_final_write_waits_in_the_outbox_is_not_failed_by_the_drain(
    services, create_code, tmp_path
):
    from codeactions_core.services.outbox import Outbox, PendingWrite

    code_id = create_code(HELLO)["id"]
    in_flight = InFlightRuns()
    runs = TrackedRuns(services.store.runs, in_flight)
    held = runs.create(NewRun(code_id=code_id, status=RunStatus.STARTED))
    cut = runs.create(NewRun(code_id=code_id, status=RunStatus.STARTED))
    outbox = Outbox(tmp_path / "outbox", 1024 * 1024, "test")
    outbox.add(
        PendingWrite(
            run_id=held.id,
            code_id=code_id,
            status="completed",
            result="done",
            extra={},
            logs=[],
            run={},
        )
    )
    try:
        failed = finish_draining(
            in_flight, runs, deadline=time.monotonic() + 0.05, ended=outbox.holds
        )
    finally:
        outbox.close()
    assert failed == 1 and in_flight.snapshot() == []
    assert services.store.runs.get(cut.id).status is RunStatus.FAILED
    assert services.store.runs.get(held.id).status is RunStatus.STARTED  # the outbox finishes it


def test_draining_waits_for_runs_that_end_in_time(services, create_code):
    code_id = create_code(HELLO)["id"]
    in_flight = InFlightRuns()
    runs = TrackedRuns(services.store.runs, in_flight)
    run = runs.create(NewRun(code_id=code_id, status=RunStatus.STARTED))
    finisher = threading.Timer(0.1, runs.update, (run.id,), {"status": RunStatus.COMPLETED})
    finisher.start()
    assert finish_draining(in_flight, runs, deadline=time.monotonic() + 30) == 0
    finisher.join()
    assert services.store.runs.get(run.id).status is RunStatus.COMPLETED


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        RuntimeError("database unavailable: database or disk is full"),
        RuntimeError('could not extend file "base/16384/2619": No space left on device'),
    ],
)
def test_storage_full_is_recognised(exc):
    assert storage_full(exc)


def test_other_errors_are_not_storage_full():
    assert storage_full(RuntimeError("connection refused")) is None
    assert storage_full(OSError(errno.EACCES, "Permission denied")) is None


@pytest.fixture
def tiny_disk(tmp_path):
    """A 4 MiB tmpfs for a data directory, unmounted afterwards."""
    try:
        with small_tmpfs(tmp_path / "disk", 4) as mount:
            yield mount
    except MountRefused as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")


def fill(directory) -> None:
    with open(os.path.join(directory, "filler"), "wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_a_full_disk_answers_503_naming_it_and_is_not_ready(tiny_disk):
    settings = Settings(data_dir=str(tiny_disk), min_free_disk_mb=1, health_check_cache_time=0)
    with api_client(settings) as (client, _):
        assert client.simulate_post("/code", params=CODE, body=HELLO).status_code == 201
        assert client.simulate_get("/health/ready").status_code == 200
        fill(tiny_disk)
        answer = client.simulate_post("/code", params=CODE, body=HELLO + "#" * 200_000)
        assert answer.status_code == 503, answer.text
        assert answer.json["message"].startswith("storage full: ")
        ready = client.simulate_get("/health/ready")
        health = client.simulate_get("/health")
    assert ready.status_code == 503
    assert ready.json["reasons"][0].startswith("disk: ")
    assert (health.status_code, health.json["status"]) == (503, "unhealthy")


@pytest.fixture
def own_redis():
    """A private redis-server (the test kills it), removed afterwards."""
    redis = PrivateRedis.start()
    yield redis
    redis.destroy()


def test_redis_killed_and_rabbitmq_down_leave_it_ready_but_degraded(tmp_path, own_redis):
    settings = Settings(
        data_dir=str(tmp_path / "data"),
        redis=own_redis.url,
        health_check_cache_time=0,
        rabbitmq_url=f"amqp://guest:guest@127.0.0.1:{free_port()}//",
    )
    with api_client(settings) as (client, _):
        before = client.simulate_get("/health").json["services"]
        assert before["redis"]["status"] == "healthy"
        own_redis.kill()
        health, ready = client.simulate_get("/health"), client.simulate_get("/health/ready")
        code_id = client.simulate_post("/code", params=CODE, body=HELLO).json["id"]
        run = client.simulate_get(f"/action/endpoint/{code_id}")
    assert (health.status_code, health.json["status"]) == (200, "degraded")
    assert health.json["services"]["redis"]["status"] == "unhealthy"
    assert health.json["services"]["rabbitmq"]["status"] == "unhealthy"
    assert (ready.status_code, ready.json["status"]) == (200, "degraded")
    assert sorted(ready.json["degraded"]) == ["rabbitmq", "redis"]
    assert (run.status_code, run.text) == (200, "hi")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_repeated_identical_errors_log_one_line_per_interval_with_a_count():
    clock, lines = FakeClock(), []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Collect()
    handler.addFilter(Throttle(10, clock=clock))
    logger = logging.getLogger("test.throttle")
    logger.addHandler(handler)
    logger.propagate, level = False, logger.level
    logger.setLevel(logging.INFO)
    try:
        for _ in range(500):  # a database outage: one error per request
            logger.error("store failure: %s (on GET /code/{code_id})", "database unavailable")
        logger.error("another error")
        logger.error("store failure: %s (on GET /code/{code_id})", "another reason")
        logger.info("info is never throttled")
        logger.info("info is never throttled")
        clock.now = 10.0
        logger.error("store failure: %s (on GET /code/{code_id})", "database unavailable")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert lines == [
        "store failure: database unavailable (on GET /code/{code_id})",
        "another error",
        "store failure: another reason (on GET /code/{code_id})",
        "info is never throttled",
        "info is never throttled",
        (
            "store failure: database unavailable (on GET /code/{code_id}) "
            "(499 more like this since it was last logged)"
        ),
    ]
