"""A database that cannot be reached: 503 with a clear message, never a secret, never a hang."""

from __future__ import annotations

import logging
import sys

import falcon.testing
import pytest

from codeactions_core.log_config import configure_error_reporting
from codeactions_core.settings import Settings
from codeactions_core.testing.server import free_port
from codeactions_core.web.app import create_app
from codeactions_core.wiring import build_services


@pytest.fixture
def unreachable_client(tmp_path):
    uri = f"postgres://codeactions:pw-secret@127.0.0.1:{free_port()}/nowhere"
    services = build_services(Settings(data_dir=str(tmp_path), db_type="postgres", db_uri=uri))
    yield falcon.testing.TestClient(create_app(services=services))
    services.close()


def test_health_is_503_naming_the_database(unreachable_client):
    result = unreachable_client.simulate_get("/health")
    assert result.status_code == 503
    assert result.json["status"] == "unhealthy"
    database = result.json["services"]["database"]
    assert database["status"] == "unhealthy" and "postgres" in database["message"]
    assert "pw-secret" not in result.text


@pytest.mark.parametrize(
    "path", ["/code/6f1c1a52-0d1e-4a51-9a57-0a7f3b1d2c01", "/code?project_uuid=P"]
)
def test_reads_are_503_without_secrets(unreachable_client, path):
    result = unreachable_client.simulate_get(path)
    assert result.status_code == 503
    assert result.json["message"].startswith("database unavailable")
    assert "pw-secret" not in result.text


def test_create_is_503_and_liveness_still_answers(unreachable_client):
    query = {"name": "a", "language": "python", "type": "flow", "project_uuid": "P"}
    assert unreachable_client.simulate_post("/code", params=query, body="x").status_code == 503
    assert unreachable_client.simulate_get("/healthz").status_code == 200


def test_sentry_without_the_sdk_is_a_warning(caplog, monkeypatch):
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)  # importing it now fails
    caplog.set_level(logging.WARNING)
    assert configure_error_reporting(Settings(sentry_dsn="https://key@sentry.example/1")) is False
    assert "sentry-sdk is not installed" in caplog.text
    assert "key@sentry" not in caplog.text
