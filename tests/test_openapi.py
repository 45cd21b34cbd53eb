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
    assert openapi.unrouted(app) == [], "operations in openapi.CORE_PATHS that the app does not serve"


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
        openapi: ClassVar = {"get": {"summary": "hello", "responses": {"200": {"description": "hi"}}}}

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
    running = start_server({"FLOWS_CODE_ACTIONS_DATA_DIR": str(Path(logs) / "data")}, logs, workers=1)
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
    max_examples=5, derandomize=True, deadline=None, database=None,
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
