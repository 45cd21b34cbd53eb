"""Durable executions driven by real `codeactions worker` processes over the real RabbitMQ and
PostgreSQL: killed workers, waits across restarts, several workers, SIGTERM."""

from __future__ import annotations

import collections
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from codeactions_core.settings import Settings
from codeactions_core.testing.api import api_client
from codeactions_core.testing.fixtures import require_service
from codeactions_core.testing.server import RunningProcess, free_port, run_cli, start_until_logged
from tests.support.echo import Answer, EchoServer, Recorded, echo_server
from tests.support.metrics import value

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

DEADLINE = 60.0
READY = "taking due flow executions"


@pytest.fixture
def environment(new_postgres_database, suite_env) -> dict[str, str]:
    """Settings of workers and API: a fresh PostgreSQL, the real broker, this test's own queues."""
    require_service("RabbitMQ", suite_env.rabbitmq_url, 5672)
    tag = uuid.uuid4().hex[:8]
    settings = {
        "FLOWS_CODE_ACTIONS_DB_TYPE": "postgres",
        "FLOWS_CODE_ACTIONS_DB_URI": new_postgres_database("ca_flows"),
        "FLOWS_CODE_ACTIONS_RABBITMQ_URL": suite_env.rabbitmq_url,
        "FLOWS_CODE_ACTIONS_FLOW_EXCHANGE": f"test.flows.{tag}",
        "FLOWS_CODE_ACTIONS_FLOW_QUEUE": f"test.flow-executions.{tag}",
        "FLOWS_CODE_ACTIONS_FLOW_LEASE_SECONDS": "2",
        "FLOWS_CODE_ACTIONS_FLOW_POLL_SECONDS": "0.2",
        "FLOWS_CODE_ACTIONS_FLOW_EGRESS_ALLOW": "127.0.0.1",  # the echo servers listen on loopback
    }
    assert run_cli("migrate", settings=settings).returncode == 0
    return settings


@pytest.fixture
def api(environment, tmp_path):
    settings = Settings.from_env(
        {**environment, "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path / "api")}
    )
    with api_client(settings) as (client, _):
        yield client


@pytest.fixture
def workers(environment, tmp_path) -> Iterator:
    started: list[RunningProcess] = []

    def start(name: str = "worker", **more: str) -> RunningProcess:
        settings = {**environment, "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path / name), **more}
        started.append(start_until_logged("worker", settings, tmp_path, READY, name=name))
        return started[-1]

    yield start
    for worker in started:
        worker.stop()


class Gate:
    """Holds requests to chosen paths until opened: a slow dependency under the test's control."""

    def __init__(self, *paths: str) -> None:
        self.paths = set(paths)
        self.opened = threading.Event()

    def __call__(self, request: Recorded) -> Answer:
        held = request.path in self.paths and not self.opened.is_set()
        return Answer(hold=self.opened if held else None)


def http(step_id: str, url: str) -> dict:
    return {
        "id": step_id,
        "type": "http_call",
        "name": step_id,
        "config": {"method": "POST", "url": url},
    }


def published(api, steps: list) -> str:
    flow_id = api.simulate_post("/flows", json={"name": "durable", "project_uuid": "P"}).json["id"]
    assert api.simulate_post(f"/flows/{flow_id}/versions", json={"steps": steps}).status_code == 201
    assert api.simulate_post(f"/flows/{flow_id}/versions/1/publish").status_code == 200
    return flow_id


def until(condition, what: str, deadline: float = DEADLINE):
    """Poll ``condition`` until it returns something true; fail naming ``what`` at the deadline."""
    give_up = time.monotonic() + deadline
    while not (value := condition()):
        assert time.monotonic() < give_up, f"timed out waiting for {what}"
        time.sleep(0.05)  # polling, not synchronisation
    return value


def execution(api, flow_id: str, execution_id: str) -> dict:
    return api.simulate_get(f"/flows/{flow_id}/executions/{execution_id}").json


def finished(api, flow_id: str, execution_id: str) -> dict:
    return until(
        lambda: (
            (e := execution(api, flow_id, execution_id))["status"] in ("completed", "failed") and e
        ),
        f"execution {execution_id} to finish",
    )


def paths(echo: EchoServer) -> collections.Counter:
    return collections.Counter(request.path for request in echo.received())


def test_announced_executions_start_without_waiting_for_a_poll(api, workers):
    with echo_server() as echo:
        flow_id = published(api, [http("one", f"{echo.url}/one")])
        workers("listener", FLOWS_CODE_ACTIONS_FLOW_POLL_SECONDS="600")  # it never looks by itself
        ids = [
            api.simulate_post(f"/flows/{flow_id}/executions", json={}).json["id"] for _ in range(5)
        ]
        done = [
            until(
                lambda i=i: execution(api, flow_id, i)["status"] == "completed",
                "an announced execution",
                deadline=20,
            )
            for i in ids
        ]
    assert all(done) and paths(echo) == {"/one": 5}


def test_a_killed_workers_execution_resumes_where_it_left_off(api, workers):
    gate = Gate("/slow")
    with echo_server(gate) as echo:
        flow_id = published(
            api,
            [
                http("one", f"{echo.url}/one"),
                http("slow", f"{echo.url}/slow"),
                http("three", f"{echo.url}/three"),
            ],
        )
        first = workers("first")
        started = api.simulate_post(f"/flows/{flow_id}/executions", json={"lead_id": 1})
        assert started.status_code == 202
        execution_id = started.json["id"]
        until(lambda: paths(echo)["/slow"] == 1, "the slow step to start")
        mid_step = execution(api, flow_id, execution_id)
        assert [(r["step_id"], r["status"]) for r in mid_step["logs"]] == [
            ("one", "completed"),
            ("slow", "running"),
        ]

        first.kill()  # a crash in the middle of the slow step
        gate.opened.set()
        workers("second")
        done = finished(api, flow_id, execution_id)

    assert done["status"] == "completed", done
    assert [(r["step_id"], r["status"], r["attempt"]) for r in done["logs"]] == [
        ("one", "completed", 1),
        ("slow", "failed", 1),
        ("slow", "completed", 2),
        ("three", "completed", 1),
    ]
    assert done["logs"][1]["error"].startswith("interrupted")
    assert paths(echo) == {"/one": 1, "/slow": 2, "/three": 1}, (
        "only the interrupted step ran again"
    )


def test_a_wait_outlives_its_worker(api, workers):
    with echo_server() as echo:
        flow_id = published(
            api,
            [
                {"id": "pause", "type": "wait", "name": "pause", "config": {"seconds": 1.5}},
                http("after", f"{echo.url}/after"),
            ],
        )
        first = workers("first")
        execution_id = api.simulate_post(f"/flows/{flow_id}/executions", json={}).json["id"]
        until(
            lambda: (
                (e := execution(api, flow_id, execution_id))["logs"]
                and e["logs"][0]["status"] == "waiting"
            ),
            "the wait to begin",
        )
        first.kill()
        workers("second")
        done = finished(api, flow_id, execution_id)
    assert done["status"] == "completed"
    assert [r["status"] for r in done["logs"]] == ["completed", "completed"]
    assert paths(echo) == {"/after": 1}


def test_a_worker_serves_its_metrics(api, workers):
    port = free_port()
    workers(
        "metered",
        FLOWS_CODE_ACTIONS_WORKER_METRICS_PORT=str(port),
        FLOWS_CODE_ACTIONS_HOST="127.0.0.1",
    )
    with echo_server() as echo:
        flow_id = published(api, [http("one", f"{echo.url}/one"), http("two", f"{echo.url}/two")])
        execution_id = api.simulate_post(f"/flows/{flow_id}/executions", json={}).json["id"]
        assert finished(api, flow_id, execution_id)["status"] == "completed"
    # the worker counts an execution right after storing its end: poll for it
    text = until(
        lambda: (
            (t := requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
            and value(t, "ca_flow_executions_finished_total", status="completed") == 1
            and t
        ),
        "the finished execution in the worker's metrics",
    )
    assert value(text, "ca_flow_steps_total", type="http_call", status="completed") == 2
    assert value(text, "ca_flow_step_duration_seconds_count", type="http_call") == 2
    assert requests.get(f"http://127.0.0.1:{port}/other", timeout=10).status_code == 404


def test_several_workers_never_run_a_step_twice(api, workers):
    with echo_server() as echo:
        steps = [http(name, f"{echo.url}/{{{{variables.n}}}}/{name}") for name in ("a", "b", "c")]
        flow_id = published(api, steps)
        for name in ("w1", "w2", "w3"):
            workers(name)
        ids = [
            api.simulate_post(f"/flows/{flow_id}/executions", json={"variables": {"n": n}}).json[
                "id"
            ]
            for n in range(30)
        ]
        results = [finished(api, flow_id, execution_id) for execution_id in ids]
    assert {r["status"] for r in results} == {"completed"}
    counts = paths(echo)
    assert len(counts) == 90 and set(counts.values()) == {1}, counts.most_common(3)


def test_sigterm_finishes_the_running_step_and_hands_the_rest_on(api, workers):
    gate = Gate("/slow")
    with echo_server(gate) as echo:
        flow_id = published(
            api, [http("slow", f"{echo.url}/slow"), http("next", f"{echo.url}/next")]
        )
        first = workers("first")
        execution_id = api.simulate_post(f"/flows/{flow_id}/executions", json={}).json["id"]
        until(lambda: paths(echo)["/slow"] == 1, "the slow step to start")
        first.process.terminate()
        until(lambda: "stopping" in first.log(), "the worker to begin stopping")
        assert first.process.poll() is None, "it waits for the running step"
        gate.opened.set()
        assert first.process.wait(30) == 0
        handed_on = execution(api, flow_id, execution_id)
        assert handed_on["status"] == "running"
        assert [(r["step_id"], r["status"]) for r in handed_on["logs"]] == [("slow", "completed")]
        workers("second")
        done = finished(api, flow_id, execution_id)
    assert done["status"] == "completed"
    assert paths(echo) == {"/slow": 1, "/next": 1}


def test_a_workers_metrics_need_a_token_once_auth_is_configured(workers):
    port = free_port()
    workers(
        "guarded",
        FLOWS_CODE_ACTIONS_WORKER_METRICS_PORT=str(port),
        FLOWS_CODE_ACTIONS_HOST="127.0.0.1",
        FLOWS_CODE_ACTIONS_AUTH_TOKEN="worker-service-token",
        FLOWS_CODE_ACTIONS_METRICS_TOKEN="scraper",
    )
    url = f"http://127.0.0.1:{port}/metrics"
    refused = requests.get(url, timeout=10)  # it serves before the worker says it is ready
    assert refused.status_code == 401 and "credentials" in refused.json()["message"]
    assert (
        requests.get(url, headers={"Authorization": "Token wrong"}, timeout=10).status_code == 401
    )
    for token in ("Bearer scraper", "Token worker-service-token"):
        answer = requests.get(url, headers={"Authorization": token}, timeout=10)
        assert answer.status_code == 200 and "ca_flow_steps" in answer.text
