"""Running codes over HTTP (/run, /endpoint, /action/endpoint) with the real Python runtime."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import falcon.testing
import pytest

from codeactions_core.errors import StoreError
from codeactions_core.execution import protections as sandbox_protections
from codeactions_core.model import RunStatus, utcnow
from codeactions_core.services.runs import ABANDONED, fail_abandoned_runs
from codeactions_core.services.schema import ensure_schema_ready
from codeactions_core.settings import Settings
from codeactions_core.store import NewRun
from codeactions_core.web.app import create_app
from codeactions_core.wiring import build_services

TOKEN = "s3rvice-token"


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    settings = Settings(
        data_dir=str(tmp_path_factory.mktemp("data")),
        auth_token=TOKEN,
        worker_pool_size=2,
        worker_pool_queue_size=0,
        project_max_concurrent_runs=2,
    )
    services = build_services(settings)
    ensure_schema_ready(services.store)
    services.start()
    yield services
    services.close()


@pytest.fixture(scope="module")
def app(services):
    return create_app(services=services)


@pytest.fixture(scope="module")
def client(app):
    """Presents the service token, like the flows engine calling us."""
    return falcon.testing.TestClient(app, headers={"Authorization": f"Token {TOKEN}"})


@pytest.fixture(scope="module")
def anonymous(app):
    return falcon.testing.TestClient(app)


@pytest.fixture
def code(client):
    def create(source: str, **params: str) -> str:
        query = {
            "name": "t",
            "language": "python",
            "type": "endpoint",
            "project_uuid": "P",
            **params,
        }
        result = client.simulate_post(
            "/code", params=query, body=source, headers={"Authorization": f"Token {TOKEN}"}
        )
        assert result.status_code == 201, result.text
        return result.json["id"]

    return create


def runs_of(client, code_id: str) -> list[dict]:
    return client.simulate_get("/coderun", params={"code_id": code_id}).json


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("json", "application/json; charset=UTF-8"),
        ("html", "text/html; charset=UTF-8"),
        ("text", "text/plain; charset=UTF-8"),
        ("xml", "text/plain; charset=UTF-8"),
    ],
)
def test_action_endpoint_shapes_the_response(client, code, content_type, expected):
    code_id = code(
        "def Run(engine):\n"
        f'    engine.result.set("<b>hi</b>", status_code=201, content_type="{content_type}")\n'
    )
    result = client.simulate_get(f"/action/endpoint/{code_id}")
    assert (result.status_code, result.headers["content-type"], result.text) == (
        201,
        expected,
        "<b>hi</b>",
    )


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_action_endpoint_takes_any_method_with_params_headers_and_body(client, code, method):
    code_id = code(
        "def Run(engine):\n"
        '    engine.result.set({"p": engine.params.get("a"), '
        '"h": engine.header.get("X-Custom-Header"),'
        ' "b": engine.body}, content_type="json")\n'
    )
    result = client.simulate_request(
        method,
        f"/action/endpoint/{code_id}",
        query_string="a=1&a=2",
        headers={"x-custom-header": "v"},
        body="payload",
    )
    assert result.status_code == 200
    assert result.json == {"p": "1", "h": "v", "b": "payload"}
    (run,) = runs_of(client, code_id)
    assert run["params"] == {"a": "1"} and run["body"] == "payload"
    assert run["headers"]["X-Custom-Header"] == ["v"]


def test_endpoint_answers_raw_text(client, code):
    code_id = code(
        'def Run(engine):\n    engine.result.set({"a": 1}, status_code=202, content_type="json")\n'
    )
    result = client.simulate_post(f"/endpoint/{code_id}")
    assert (result.status_code, result.headers["content-type"], result.text) == (
        200,
        "text/plain; charset=UTF-8",
        '{"a": 1}',
    )


def test_flow_codes_run_on_the_endpoint_routes_as_they_did(client, code):
    code_id = code('def Run(engine):\n    engine.result.set("flow")\n', type="flow")
    for path in (f"/endpoint/{code_id}", f"/action/endpoint/{code_id}"):
        result = client.simulate_get(path)
        assert (result.status_code, result.text) == (200, "flow")
    assert len(runs_of(client, code_id)) == 2
    ran = client.simulate_post(f"/run/{code_id}", headers={"Authorization": f"Token {TOKEN}"})
    assert ran.status_code == 200
    assert (ran.json["code_id"], ran.json["result"]["status"], ran.json["result"]["result"]) == (
        code_id,
        "completed",
        "flow",
    )


@pytest.mark.parametrize("header", [None, "Token wrong", f"Bearer {TOKEN}", TOKEN])
def test_run_requires_the_service_token(client, anonymous, code, header):
    code_id = code('def Run(engine):\n    engine.result.set("x")\n')
    result = anonymous.simulate_post(
        f"/run/{code_id}", headers={"Authorization": header} if header else {}
    )
    assert result.status_code == 401 and "token" in result.json["message"].lower()
    assert runs_of(client, code_id) == []


def test_user_error_is_500_and_a_failed_run(client, code):
    code_id = code(
        'def Run(engine):\n    engine.log.info("before")\n    raise RuntimeError("boom")\n'
    )
    result = client.simulate_get(f"/action/endpoint/{code_id}")
    assert result.status_code == 500 and "RuntimeError: boom" in result.json["message"]
    (run,) = runs_of(client, code_id)
    assert run["status"] == "failed" and "RuntimeError: boom" in run["result"]
    logs = client.simulate_get("/codelog", params={"run_id": run["id"]}).json
    assert [(log["type"], log["content"].splitlines()[-1]) for log in logs["data"]] == [
        ("info", "before"),
        ("error", "RuntimeError: boom"),
    ]


def test_timeout_is_408_and_a_failed_run(client, code):
    code_id = code("import time\ndef Run(engine):\n    time.sleep(60)\n", timeout="5")
    result = client.simulate_get(f"/action/endpoint/{code_id}")
    assert result.status_code == 408 and "timeout" in result.json["message"]
    (run,) = runs_of(client, code_id)
    assert run["status"] == "failed" and run["extra"]["timed_out"] is True


def test_every_run_is_one_terminal_run_with_its_logs(client, code):
    code_id = code(
        'def Run(engine):\n    engine.log.info(engine.params.get("n"))\n'
        '    engine.result.set("ok")\n'
    )
    for n in range(3):
        assert (
            client.simulate_get(f"/action/endpoint/{code_id}", params={"n": str(n)}).status_code
            == 200
        )
    runs = runs_of(client, code_id)
    assert len(runs) == 3 and {run["status"] for run in runs} == {"completed"}
    for run in runs:
        logs = client.simulate_get("/codelog", params={"run_id": run["id"]}).json["data"]
        assert [log["content"] for log in logs] == [run["params"]["n"]]


def test_a_log_store_failure_still_finishes_the_run(client, code, services, monkeypatch):
    def unavailable(logs):
        raise StoreError("the log bucket is unreachable")

    monkeypatch.setattr(services.log_store, "add_many", unavailable)
    code_id = code('def Run(engine):\n    engine.log.info("hi")\n    engine.result.set("ok")\n')
    answer = client.simulate_get(f"/action/endpoint/{code_id}")
    assert (answer.status_code, answer.text) == (200, "ok")
    (run,) = runs_of(client, code_id)
    assert run["status"] == "completed"
    assert (
        run["extra"]["logs_error"]
        == "1 log lines could not be stored: the log bucket is unreachable"
    )


def test_an_update_takes_effect_on_the_next_run(client, code):
    code_id = code('def Run(engine):\n    engine.result.set("v1")\n')
    assert client.simulate_get(f"/action/endpoint/{code_id}").text == "v1"
    patched = client.simulate_patch(
        f"/code/{code_id}",
        body='def Run(engine):\n    engine.result.set("v2")\n',
        headers={"Authorization": f"Token {TOKEN}"},
    )
    assert patched.status_code == 200
    assert client.simulate_get(f"/action/endpoint/{code_id}").text == "v2"


def test_unknown_codes_are_404(client):
    for path in ("/action/endpoint/nope", "/endpoint/00000000-0000-0000-0000-000000000000"):
        assert client.simulate_get(path).status_code == 404


def test_a_full_pool_answers_503_and_records_the_refusal(client, code, services):
    slow = code("import time\ndef Run(engine):\n    time.sleep(2)\n    engine.result.set('slow')\n")
    quick = code('def Run(engine):\n    engine.result.set("quick")\n')
    answers: list[str] = []
    threads = [
        threading.Thread(
            target=lambda: answers.append(client.simulate_get(f"/action/endpoint/{slow}").text)
        )
        for _ in range(services.pool.workers)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while services.pool.busy < services.pool.workers and time.monotonic() < deadline:
        time.sleep(0.01)  # polling until every worker holds a slow run
    refused = client.simulate_get(f"/action/endpoint/{quick}")
    for thread in threads:
        thread.join()
    assert refused.status_code == 503 and "busy" in refused.json["message"]
    assert answers == ["slow", "slow"]
    (run,) = runs_of(client, quick)
    assert run["status"] == "failed" and run["result"].startswith("rejected")
    assert client.simulate_get(f"/action/endpoint/{quick}").text == "quick"


def test_health_shows_runtimes_and_protections(client):
    health = client.simulate_get("/health").json
    assert health["runtimes"]["python"]["ready"] is True
    assert health["sandbox"]["clean_environment"] is True
    assert "rlimits" in health["sandbox"]


def test_runs_left_unfinished_by_a_dead_server_are_failed(services, code):
    code_id = code('def Run(engine):\n    engine.result.set("x")\n')
    stuck = services.store.runs.create(NewRun(code_id=code_id, status=RunStatus.STARTED))
    assert fail_abandoned_runs(services.store.runs) == 0  # too recent: it may still be running
    assert fail_abandoned_runs(services.store.runs, now=utcnow() + timedelta(minutes=10)) >= 1
    assert (services.store.runs.get(stuck.id).status, services.store.runs.get(stuck.id).result) == (
        RunStatus.FAILED,
        ABANDONED,
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="the full sandbox needs root (or user namespaces)")
def test_every_runtime_runs_with_full_isolation_here(services):
    """A failed probe silently falls back to weaker isolation: catch it."""
    services.runtimes.start()
    for language, health in services.runtimes.health().items():
        if health.ready:
            holding = sandbox_protections.in_force(health.details)
            assert [name for name, ok in holding.items() if not ok] == [], (
                language,
                health.details,
            )
