"""``/openapi.json`` describes exactly the routes the app serves, is valid OpenAPI 3.1, and a
real server answers what it says (Schemathesis, a bounded number of examples per operation)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import falcon
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from codeactions_core.settings import Settings
from codeactions_core.testing.server import RunningServer, start_server
from codeactions_core.web import openapi
from codeactions_core.web.app import create_app


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> falcon.App:
    data = tmp_path_factory.mktemp("openapi-data")
    return create_app(Settings.from_env({"FLOWS_CODE_ACTIONS_DATA_DIR": str(data)}))


def test_every_route_is_described_and_every_description_is_routed(app):
    assert openapi.undocumented(app) == [], "routes the app serves that openapi.CORE_PATHS lacks"
    assert openapi.unrouted(app) == [], (
        "operations in openapi.CORE_PATHS that the app does not serve"
    )


def test_the_comparison_names_a_missing_route(app, tmp_path):
    fresh = create_app(Settings.from_env({"FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path)}))

    class Undescribed:
        def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
            resp.media = {}

    fresh.add_route("/plugin/undescribed", Undescribed())
    assert openapi.undocumented(fresh) == ["GET /plugin/undescribed"]


def test_a_plugin_resource_contributes_its_operations(tmp_path):
    fresh = create_app(Settings.from_env({"FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path)}))

    class Hello:
        openapi: ClassVar = {
            "get": {"summary": "hello", "responses": {"200": {"description": "hi"}}}
        }

        def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
            resp.media = {"hi": True}

    fresh.add_route("/plugin/hello", Hello())
    assert openapi.undocumented(fresh) == []
    document = openapi.build_document(fresh)
    assert document["paths"]["/plugin/hello"]["get"]["summary"] == "hello"
    validate(document)


def test_the_document_is_valid_openapi_3_1(app):
    document = openapi.build_document(app)
    assert document["openapi"].startswith("3.1")
    validate(document)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[RunningServer]:
    logs = tmp_path_factory.mktemp("openapi-server")
    running = start_server(
        {"FLOWS_CODE_ACTIONS_DATA_DIR": str(Path(logs) / "data")}, logs, workers=1
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.e2e
def test_the_server_serves_the_document_and_its_page(server):
    served = requests.get(server.url("/openapi.json"), timeout=10)
    assert served.status_code == 200
    validate(served.json())
    assert "/code/{code_id}" in served.json()["paths"]
    page = requests.get(server.url("/docs"), timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "openapi.json" in page.text and "//cdn" not in page.text and "https://" not in page.text


CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
"""What the issue asks of every answer (accepting every schema-valid request is not)."""
EXAMPLES = settings(
    max_examples=5,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.e2e
def test_the_server_answers_as_described(server):
    """Every operation, 5 generated requests each (fixed seed): no 5xx, answers match their schemas.

    The only 5xx a run route documents (500 when the code raises, 503 when
    busy) cannot happen here: the generated ids name no code.
    """
    loaded = schemathesis.openapi.from_url(server.url("/openapi.json"))
    failures, checked = [], 0
    for result in loaded.get_all_operations():
        operation = result.ok()
        checked += 1

        @given(case=operation.as_strategy())
        @EXAMPLES
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS)

        try:
            check()
        except Exception as exc:  # noqa: BLE001 - collected, reported per operation below
            failures.append(f"{operation.label}: {exc}")
    assert checked >= len(openapi.CORE_PATHS)
    assert not failures, "\n\n".join(failures)


SOURCE = (
    'def Run(engine):\n    engine.log.info("ran")\n'
    '    engine.result.set({"ok": True}, content_type="json")\n'
)


def seed(server: RunningServer) -> dict[str, str]:
    """Real objects of every kind, so that answers with bodies (not only errors) are checked."""
    project = "openapi-P"
    code = requests.post(
        server.url("/code"),
        json={
            "name": "seeded",
            "language": "python",
            "type": "endpoint",
            "project_uuid": project,
            "source": SOURCE,
        },
        timeout=30,
    ).json()
    requests.get(server.url(f"/action/endpoint/{code['id']}"), timeout=30)
    run = requests.get(server.url("/coderun"), params={"code_id": code["id"]}, timeout=10).json()[0]
    log = requests.get(server.url("/codelog"), params={"run_id": run["id"]}, timeout=10).json()[
        "data"
    ][0]
    flow = requests.post(
        server.url("/flows"), json={"name": "f", "project_uuid": project}, timeout=10
    ).json()
    steps = [{"id": "s", "type": "code", "config": {"code_id": code["id"]}}]
    requests.post(server.url(f"/flows/{flow['id']}/versions"), json={"steps": steps}, timeout=10)
    requests.post(server.url(f"/flows/{flow['id']}/versions/1/publish"), timeout=10)
    requests.post(
        server.url(f"/flows/{flow['id']}/versions"), json={"steps": steps * 1}, timeout=10
    )
    execution = requests.post(
        server.url(f"/flows/{flow['id']}/executions"),
        params={"wait": "true"},
        json={"variables": {}},
        timeout=60,
    ).json()
    return {
        "code_id": code["id"],
        "run_id": run["id"],
        "log_id": log["id"],
        "flow_id": flow["id"],
        "number": "1",
        "execution_id": execution["id"],
        "project_uuid": project,
        "from": "1",
        "to": "2",
    }


@pytest.mark.e2e
def test_answers_about_real_objects_match_their_schemas(server):
    """Every GET, and the main writes, on real objects: 2xx answers whose bodies match.

    (Project and permission routes need the service token, which this server lacks: they answer
    a documented error.)
    """
    known = seed(server)
    loaded = schemathesis.openapi.from_url(server.url("/openapi.json"))
    answered = []
    for result in loaded.get_all_operations():
        operation = result.ok()
        if operation.method.upper() != "GET":
            continue
        names = {parameter.name for parameter in operation.path_parameters}
        if not names <= set(known):
            continue
        query = {
            name: known[name]
            for name in ("project_uuid", "code_id", "run_id", "from", "to")
            if any(parameter.name == name for parameter in operation.query)
        }
        if operation.path == "/codelog":
            query.pop("code_id", None)
        case = operation.Case(path_parameters={name: known[name] for name in names}, query=query)
        response = case.call_and_validate(checks=CHECKS)
        answered.append((operation.path, response.status_code))
    project = known["project_uuid"]
    steps = [{"id": "s", "type": "code", "config": {"code_id": known["code_id"]}}]
    writes = [
        (
            "/code",
            "POST",
            {
                "body": {
                    "name": "n",
                    "language": "python",
                    "type": "endpoint",
                    "project_uuid": project,
                    "source": SOURCE,
                }
            },
        ),
        ("/code/{code_id}", "PATCH", {"body": {"timeout": 20}}),
        ("/run/{code_id}", "POST", {}),
        ("/flows", "POST", {"body": {"name": "g", "project_uuid": project}}),
        ("/flows/{flow_id}", "PATCH", {"body": {"description": "d"}}),
        ("/flows/{flow_id}/versions", "POST", {"body": {"steps": steps}}),
        (
            "/flows/{flow_id}/executions",
            "POST",
            {"body": {"variables": {}}, "query": {"wait": "true"}},
        ),
    ]
    for path, method, extra in writes:
        operation = loaded[path][method]
        names = {parameter.name for parameter in operation.path_parameters}
        case = operation.Case(
            path_parameters={name: known[name] for name in names},
            media_type="application/json" if "body" in extra else None,
            **extra,
        )
        response = case.call_and_validate(checks=CHECKS)
        answered.append((f"{method} {path}", response.status_code))
    assert all(status < 300 for label, status in answered if label.startswith(("POST", "PATCH"))), (
        answered
    )
    ok = {path for path, status in answered if status == 200}
    assert {
        "/code/{code_id}",
        "/coderun/{run_id}",
        "/codelog/{log_id}",
        "/codelog",
        "/coderun",
        "/code",
        "/flows",
        "/flows/{flow_id}/versions/{number}",
        "/flows/{flow_id}/executions/{execution_id}",
        "/flows/{flow_id}/diff",
    } - ok == set(), answered
