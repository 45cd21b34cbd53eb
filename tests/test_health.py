"""/health: concurrent dependency checks with latency, cached, 503 when one is unhealthy."""

from __future__ import annotations

import re
import shutil
import threading

from codeactions_core.drain import DrainState
from codeactions_core.execution.runtime import RuntimeHealth
from codeactions_core.services.health import HealthService
from codeactions_core.settings import Settings
from codeactions_core.testing.api import api_client
from codeactions_core.testing.server import free_port

LATENCY = re.compile(r"^\d+\.\d{2}ms$")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_embedded_default_is_healthy(client):
    answer = client.simulate_get("/health")
    assert answer.status_code == 200
    report = answer.json
    assert report["status"] == "healthy"
    assert set(report["services"]) == {"database"}
    database = report["services"]["database"]
    assert (database["status"], database["message"]) == ("healthy", "sqlite reachable")
    assert LATENCY.match(database["latency"]) and database["timestamp"].endswith("Z")
    assert {"timestamp", "uptime", "version", "system", "runtimes", "sandbox"} <= set(report)
    assert set(report["runtimes"]["python"]) == {"ready", "message"}


def test_every_configured_dependency_is_checked(tmp_path, redis_url, suite_env):
    settings = Settings(
        data_dir=str(tmp_path), redis=redis_url, rabbitmq_url=suite_env.rabbitmq_url
    )
    with api_client(settings) as (client, _):
        answer = client.simulate_get("/health")
    assert answer.status_code == 200, answer.text
    services = answer.json["services"]
    assert set(services) == {"database", "redis", "rabbitmq"}
    assert all(
        check["status"] == "healthy" and LATENCY.match(check["latency"])
        for check in services.values()
    )


def test_unreachable_optional_dependencies_leave_it_degraded_and_ready(tmp_path):
    """Redis fails open and RabbitMQ is a hint: down, they degrade the report, they do not
    take the replica out of the load balancer."""
    dead = free_port()
    settings = Settings(
        data_dir=str(tmp_path),
        redis=f"redis://:hunter2@127.0.0.1:{dead}/0",
        rabbitmq_url=f"amqp://guest:hunter2@127.0.0.1:{dead}//",
    )
    with api_client(settings) as (client, _):
        answer = client.simulate_get("/health")
        ready = client.simulate_get("/health/ready")
    assert answer.status_code == 200, answer.text
    report = answer.json
    assert report["status"] == "degraded"
    assert report["services"]["database"]["status"] == "healthy"
    for name in ("redis", "rabbitmq"):
        assert report["services"][name]["status"] == "unhealthy"
        assert "refused" in report["services"][name]["message"].lower()
    assert "hunter2" not in answer.text
    assert ready.status_code == 200, ready.text
    assert ready.json == {"status": "degraded", "degraded": ["redis", "rabbitmq"]}


def test_a_required_dependency_down_answers_503_naming_it(tmp_path):
    def broken() -> str:
        raise ConnectionError("connection refused")

    health = service_with(Settings(data_dir=str(tmp_path)), {"database": broken})
    assert health.report()["status"] == "unhealthy"
    ready, body = health.readiness()
    assert not ready
    assert body["reasons"] == ["database: ConnectionError: connection refused"]


def test_live_and_ready_answer_on_the_embedded_default(client):
    live, ready = client.simulate_get("/health/live"), client.simulate_get("/health/ready")
    assert (live.status_code, live.json) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json) == (200, {"status": "ready", "degraded": []})


def test_draining_turns_readiness_503_at_once(tmp_path):
    drain = DrainState()
    health = service_with(Settings(data_dir=str(tmp_path)), {}, drain=drain)
    assert health.readiness()[0]
    drain.begin()
    refused = {"status": "unavailable", "reasons": ["server shutting down"]}
    assert health.readiness() == (False, refused)


def test_a_data_directory_below_the_free_space_threshold_is_not_ready(tmp_path):
    free_mb = shutil.disk_usage(tmp_path).free // (1024 * 1024)
    health = service_with(Settings(data_dir=str(tmp_path), min_free_disk_mb=free_mb + 1024), {})
    report = health.report()
    assert report["status"] == "unhealthy"
    assert report["disk"]["status"] == "unhealthy"
    assert "MIN_FREE_DISK_MB" in report["disk"]["message"]
    ready, body = health.readiness()
    assert not ready and body["reasons"][0].startswith("disk: OSError: only ")


def test_no_ready_runtime_is_not_ready(tmp_path):
    health = service_with(Settings(data_dir=str(tmp_path)), {}, runtimes={"python": False})
    ready, body = health.readiness()
    assert not ready and body["reasons"] == ["runtimes: no runtime is ready"]


def service_with(
    settings: Settings, checks: dict, runtimes: dict | None = None, **kwargs
) -> HealthService:
    class Store:
        kind = "fake"
        logs = None

        def ping(self) -> None:
            pass

    class Runtimes:
        def health(self) -> dict:
            states = {"python": True} if runtimes is None else runtimes
            return {
                language: RuntimeHealth(ready=ready, message="")
                for language, ready in states.items()
            }

    health = HealthService(settings, Store(), None, Runtimes(), **kwargs)
    health.checks = checks
    return health


def test_checks_run_concurrently(tmp_path):
    both_running = threading.Barrier(2, timeout=5)

    def check() -> str:
        both_running.wait()  # only passes when the other check runs at the same time
        return "ok"

    report = service_with(Settings(data_dir=str(tmp_path)), {"a": check, "b": check}).report()
    assert [report["services"][name]["status"] for name in ("a", "b")] == ["healthy", "healthy"]


def test_a_hung_check_is_unhealthy_without_holding_the_request(tmp_path):
    release = threading.Event()
    health = service_with(
        Settings(data_dir=str(tmp_path)),
        {"stuck": lambda: release.wait(30) and "late"},
        check_timeout=0.2,
    )
    try:
        report = health.report()
    finally:
        release.set()
    assert report["services"]["stuck"]["status"] == "unhealthy"
    assert report["services"]["stuck"]["message"] == "no answer within 0.2 s"


def test_reports_are_cached_for_the_configured_time(tmp_path):
    calls, clock = [], FakeClock()
    health = service_with(
        Settings(data_dir=str(tmp_path), health_check_cache_time=3),
        {"counted": lambda: calls.append(1) or "ok"},
        clock=clock,
    )
    first = health.report()
    clock.now = 2.9
    assert health.report() is first and len(calls) == 1
    clock.now = 3.0
    assert health.report() is not first and len(calls) == 2


def test_failing_check_message_names_the_error(tmp_path):
    def broken() -> str:
        raise ConnectionError("no route to host")

    report = service_with(Settings(data_dir=str(tmp_path)), {"db": broken}).report()
    assert report["status"] == "unhealthy"
    assert report["services"]["db"]["message"] == "ConnectionError: no route to host"


def test_the_free_space_of_an_embedded_databases_own_directory_is_watched(tmp_path):
    from codeactions_sql import SqlStore

    elsewhere = tmp_path / "database"
    elsewhere.mkdir()
    settings = Settings(data_dir=str(tmp_path / "data"), db_uri=f"sqlite:///{elsewhere}/ca.db")
    store = SqlStore.from_settings(settings)
    try:
        health = HealthService(settings, store, store.logs, runtimes=None)
        assert health.disk_paths == [str(tmp_path / "data"), str(elsewhere)]
    finally:
        store.close()


def test_a_store_on_a_server_adds_no_directory(tmp_path):
    health = service_with(Settings(data_dir=str(tmp_path)), {})
    assert health.disk_paths == [str(tmp_path)]
