"""The real ``codeactions serve`` (gunicorn) over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from codeactions_core.testing.server import run_cli, start_server
from tests.support.samples import PYTHON_ACTION

pytestmark = pytest.mark.e2e

QUERY = {"name": "a", "language": "python", "type": "endpoint", "project_uuid": "P"}


def create_get_and_list(base_url: str, headers: dict | None = None) -> dict:
    created = requests.post(
        f"{base_url}/code", params=QUERY, data=PYTHON_ACTION.encode(), headers=headers, timeout=10
    )
    assert created.status_code == 201, created.text
    code = created.json()
    assert code["source"] == PYTHON_ACTION
    fetched = requests.get(f"{base_url}/code/{code['id']}", headers=headers, timeout=10)
    assert (fetched.status_code, fetched.json()) == (200, code)
    listed = requests.get(
        f"{base_url}/code", params={"project_uuid": "P"}, headers=headers, timeout=10
    )
    assert code in listed.json()
    return code


def test_embedded_default_serves_and_keeps_data(tmp_path):
    settings = {"FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path / "data")}
    server = start_server(settings, tmp_path, workers=2)
    try:
        assert "NO AUTHENTICATION IS CONFIGURED" in server.log()
        code = create_get_and_list(server.base_url)
        missing = requests.get(server.url("/nothing/here"), timeout=10)
        assert (missing.status_code, missing.json()) == (
            404,
            {"message": "no route for GET /nothing/here"},
        )
    finally:
        assert server.stop() == 0
    assert (tmp_path / "data" / "codeactions.db").exists()
    server = start_server(settings, tmp_path)
    try:
        assert requests.get(server.url(f"/code/{code['id']}"), timeout=10).json() == code
    finally:
        server.stop()


@pytest.mark.postgres
def test_postgres_serves_with_pooled_connections(new_postgres_database, tmp_path):
    uri = new_postgres_database()
    settings = {
        "FLOWS_CODE_ACTIONS_DB_TYPE": "postgres",
        "FLOWS_CODE_ACTIONS_DB_URI": uri,
        "FLOWS_CODE_ACTIONS_DB_MAX_POOL_SIZE": "2",
        "FLOWS_CODE_ACTIONS_WEB_THREADS": "8",
    }
    assert run_cli("migrate", settings=settings).returncode == 0
    server = start_server(
        {**settings, "FLOWS_CODE_ACTIONS_AUTH_TOKEN": "t0ken"}, tmp_path, workers=1
    )
    try:
        assert "NO AUTHENTICATION" not in server.log() and "t0ken" not in server.log()
        code = create_get_and_list(server.base_url, {"Authorization": "Token t0ken"})
        with ThreadPoolExecutor(16) as pool:
            statuses = list(
                pool.map(
                    lambda _: (
                        requests.get(
                            server.url(f"/code/{code['id']}"),
                            headers={"Authorization": "Token t0ken"},
                            timeout=30,
                        ).status_code
                    ),
                    range(64),
                )
            )
        assert statuses == [200] * 64
        import psycopg2

        connection = psycopg2.connect(uri)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'codeactions'"
            )
            (open_connections,) = cursor.fetchone()
        connection.close()
        # One worker, pools of two (one for codes, one for run history): connections reused.
        assert 1 <= open_connections <= 4
    finally:
        server.stop()
