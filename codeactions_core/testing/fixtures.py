"""pytest fixtures for the core's and the plugins' test suites: opt in by importing them.

Nothing here is registered with pytest on its own. A suite's ``conftest.py`` imports
the fixtures its tests use, and those they depend on, which pytest then finds there::

    from codeactions_core.testing.fixtures import (  # noqa: F401 - fixtures, found by name
        new_postgres_database, postgres_server_uri, postgres_uri, suite_env,
    )

Services (PostgreSQL, Redis) are the real ones on this machine. When one is
unreachable its tests are skipped with the reason, except under
``CODEACTIONS_REQUIRE_SERVICES=1`` (set by CI), where they fail.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from codeactions_core.settings import SuiteEnvironment


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def require_service(name: str, url: str, default_port: int) -> None:
    """Skip (or, with CODEACTIONS_REQUIRE_SERVICES=1, fail) when a service is down."""
    if reachable(url, default_port):
        return
    message = f"{name} is not reachable at {urlsplit(url).netloc or url}"
    if SuiteEnvironment.from_env().require_services:
        pytest.fail(f"{message} and CODEACTIONS_REQUIRE_SERVICES=1")
    pytest.skip(message)


@pytest.fixture(scope="session")
def suite_env() -> SuiteEnvironment:
    return SuiteEnvironment.from_env()


@pytest.fixture(scope="session")
def redis_url(suite_env: SuiteEnvironment) -> str:
    """URL of the test Redis database (the service must be up); tests use their own keys."""
    require_service("Redis", suite_env.redis_url, 6379)
    return suite_env.redis_url


@pytest.fixture(scope="session")
def postgres_server_uri(suite_env: SuiteEnvironment) -> str:
    """URI of the PostgreSQL maintenance database (the service must be up)."""
    require_service("PostgreSQL", suite_env.postgres_uri, 5432)
    return suite_env.postgres_uri


@pytest.fixture(scope="session")
def new_postgres_database(postgres_server_uri: str) -> Iterator:
    """A factory of fresh, empty PostgreSQL databases, all dropped at the end of the session."""
    psycopg2 = pytest.importorskip("psycopg2")
    from psycopg2 import sql

    created: list[str] = []

    def admin():
        connection = psycopg2.connect(postgres_server_uri)
        connection.autocommit = True
        return connection

    def create(prefix: str = "ca_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        connection = admin()
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            connection.close()
        created.append(name)
        parts = urlsplit(postgres_server_uri)
        return urlunsplit(parts._replace(path=f"/{name}"))

    yield create

    connection = admin()
    try:
        with connection.cursor() as cursor:
            for name in created:
                cursor.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
    finally:
        connection.close()


@pytest.fixture(scope="session")
def postgres_uri(new_postgres_database) -> str:
    """One fresh database for the session (tests sharing it must clean up after themselves)."""
    return new_postgres_database()
