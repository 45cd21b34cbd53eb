from __future__ import annotations

from collections.abc import Iterator

import falcon.testing
import pytest

from codeactions_core.services.schema import ensure_schema_ready
from codeactions_core.settings import Settings
from codeactions_core.testing.samples import PYTHON_ACTION
from codeactions_core.web.app import create_app
from codeactions_core.wiring import Services, build_services


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Captured output with lone surrogates (hostile-text tests) travels escaped, so a report
    can cross to pytest-xdist's controller, which accepts only UTF-8."""
    outcome = yield
    report = outcome.get_result()
    report.sections = [
        (title, text.encode("utf-8", "backslashreplace").decode("utf-8"))
        for title, text in report.sections
    ]


@pytest.fixture
def settings(tmp_path) -> Settings:
    """The embedded default, in a private data directory."""
    return Settings(data_dir=str(tmp_path / "data"))


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    services = build_services(settings)
    ensure_schema_ready(services.store)
    yield services
    services.close()


@pytest.fixture
def client(services: Services) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(services=services))


@pytest.fixture
def create_code(client):
    """POST /code the way the old clients do: metadata in the query, source as the body."""

    def create(source: str = PYTHON_ACTION, **params: str) -> dict:
        query = {"name": "greeter", "language": "python", "type": "endpoint", "project_uuid": "P1"}
        query.update(params)
        result = client.simulate_post("/code", params=query, body=source)
        assert result.status_code == 201, result.text
        return result.json

    return create
