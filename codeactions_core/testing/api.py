"""The API in-process, for tests (core and plugins): services, schema, a falcon test client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import falcon.testing

from codeactions_core.services.schema import ensure_schema_ready
from codeactions_core.settings import Settings
from codeactions_core.web.app import create_app
from codeactions_core.wiring import Services, build_services


@contextmanager
def api_client(settings: Settings) -> Iterator[tuple[falcon.testing.TestClient, Services]]:
    """A test client of the API built from ``settings`` (schema migrated), and its services."""
    services = build_services(settings)
    try:
        ensure_schema_ready(services.store)
        yield falcon.testing.TestClient(create_app(services=services)), services
    finally:
        services.close()
