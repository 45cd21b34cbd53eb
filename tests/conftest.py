from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator

import falcon.testing
import hypothesis.configuration
import pytest

from codeactions_core.services.schema import ensure_schema_ready
from codeactions_core.settings import Settings, SuiteEnvironment
from codeactions_core.testing.fixtures import (  # noqa: F401 - fixtures, found here by name
    new_postgres_database,
    postgres_server_uri,
    postgres_uri,
    redis_url,
    suite_env,
)
from codeactions_core.web.app import create_app
from codeactions_core.wiring import Services, build_services
from tests.support import postgres, redis_server
from tests.support.samples import PYTHON_ACTION

# Hypothesis (and schemathesis on it) keeps its files in a temporary directory of this
# process, not in `.hypothesis/` of the working directory: no test writes outside one.
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="codeactions-test-hypothesis-")
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)
hypothesis.configuration.set_hypothesis_home_dir(_HYPOTHESIS_HOME)


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


def require_program(name: str, ok: bool) -> None:
    """Skip (or, with CODEACTIONS_REQUIRE_SERVICES=1, fail) when a program is missing."""
    if ok:
        return
    message = f"{name} is not installed here"
    if SuiteEnvironment.from_env().require_services:
        pytest.fail(f"{message} and CODEACTIONS_REQUIRE_SERVICES=1")
    pytest.skip(message)


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[postgres.PrivatePostgres]:
    """A PostgreSQL server of this test module's own (temporary directory, free port) to
    stop, crash, freeze and thaw (``tests/support/postgres.py``)."""
    require_program("PostgreSQL (initdb, pg_ctl)", postgres.available())
    server = postgres.PrivatePostgres.start()
    yield server
    server.destroy()


@pytest.fixture
def private_redis() -> Iterator[redis_server.PrivateRedis]:
    """A redis-server of this test's own to kill, freeze and restart
    (``tests/support/redis_server.py``)."""
    require_program("redis-server", redis_server.available())
    server = redis_server.PrivateRedis.start()
    yield server
    server.destroy()
