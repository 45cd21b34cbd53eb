"""A database left at version 5 by the old service: migrate it, read it through the API."""

from __future__ import annotations

import json

import pytest
import requests
from codeactions_sql.migrator import migrations_for

from codeactions_core.testing.server import run_cli, start_server
from tests.support.legacy_database import version_5_database

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

CODE_ID = "6f1c1a52-0d1e-4a51-9a57-0a7f3b1d2c01"
LEGACY_CODE_ID = "65a1f0c2e4b0a1b2c3d4e5f6"
RUN_ID = "2b7e5a10-88aa-4c33-9f00-5d4c3b2a1f00"


def build_old_database(uri: str) -> None:
    """The old service's rows on a version-5 database."""
    with version_5_database(uri) as cursor:
        cursor.execute(
            "INSERT INTO codes (id, mongo_object_id, name, type, source, language, url, "
            "project_uuid, timeout, created_at, updated_at) "
            "VALUES (%s, %s, 'legacy', 'endpoint', 'def Run(engine): pass', 'python', NULL, "
            "'proj-old', 30, "
            "'2024-01-15 10:30:00+00', '2024-01-16 11:00:00+00')",
            (CODE_ID, LEGACY_CODE_ID),
        )
        cursor.execute(
            "INSERT INTO codes (name, type, source, language, project_uuid) "
            "VALUES ('defaults', 'flow', 'print(1)', 'go', 'proj-old')"
        )
        cursor.execute(
            "INSERT INTO coderuns (id, code_id, code_mongo_id, status, result, extra, params, "
            "body, headers, created_at, updated_at) "
            "VALUES (%s, %s, %s, 'completed', '{\"ok\":1}', %s, %s, 'b', %s, "
            "'2024-01-15 10:35:00+00', '2024-01-15 10:35:02+00')",
            (
                RUN_ID,
                CODE_ID,
                LEGACY_CODE_ID,
                json.dumps({"status_code": 200, "content_type": "json"}),
                json.dumps({"valor": "100"}),
                json.dumps({"User-Agent": ["curl/8"]}),
            ),
        )
        cursor.execute(
            "INSERT INTO projects (uuid, name, authorizations) VALUES ('proj-old', 'Old', %s)",
            (json.dumps([{"user_email": "a@x.org", "role": 3}]),),
        )
        cursor.execute(
            "INSERT INTO user_permissions (project_uuid, email, role) "
            "VALUES ('proj-old', 'a@x.org', 3)"
        )


def test_old_database_migrates_and_reads_back(new_postgres_database, tmp_path):
    uri = new_postgres_database("ca_compat")
    build_old_database(uri)
    settings = {"FLOWS_CODE_ACTIONS_DB_TYPE": "postgres", "FLOWS_CODE_ACTIONS_DB_URI": uri}

    refused = run_cli("serve", settings=settings, timeout=30)
    assert refused.returncode == 2 and "version 5" in refused.stderr

    migrated = run_cli("migrate", settings=settings)
    assert migrated.returncode == 0, migrated.stderr
    latest = migrations_for("postgres")[-1].version
    assert "applied 6, 7, 8, 9" in migrated.stdout and f"version {latest}" in migrated.stdout

    server = start_server(settings, tmp_path)
    try:
        code = requests.get(server.url(f"/code/{CODE_ID}"), timeout=10).json()
        assert code == {
            "id": CODE_ID,
            "name": "legacy",
            "type": "endpoint",
            "source": "def Run(engine): pass",
            "language": "python",
            "url": "",
            "project_uuid": "proj-old",
            "timeout": 30,
            "created_at": "2024-01-15T10:30:00Z",
            "updated_at": "2024-01-16T11:00:00Z",
            "version": 1,  # a stored code is version 1 of its history (migration 000011)
        }
        assert requests.get(server.url(f"/code/{LEGACY_CODE_ID}"), timeout=10).json() == code
        listed = requests.get(
            server.url("/code"), params={"project_uuid": "proj-old"}, timeout=10
        ).json()
        assert {c["name"] for c in listed} == {"legacy", "defaults"}
        assert next(c for c in listed if c["name"] == "defaults")["timeout"] == 60

        run = requests.get(server.url(f"/coderun/{RUN_ID}"), timeout=10).json()
        assert run == {
            "id": RUN_ID,
            "code_id": CODE_ID,
            "status": "completed",
            "result": '{"ok":1}',
            "extra": {"status_code": 200, "content_type": "json"},
            "params": {"valor": "100"},
            "body": "b",
            "headers": {"User-Agent": ["curl/8"]},
            "created_at": "2024-01-15T10:35:00Z",
            "updated_at": "2024-01-15T10:35:02Z",
            "code_mongo_id": LEGACY_CODE_ID,  # the row has it: shown, as the old service did
        }
        runs = requests.get(
            server.url("/coderun"), params={"code_id": LEGACY_CODE_ID}, timeout=10
        ).json()
        assert [r["id"] for r in runs] == [RUN_ID]

        patched = requests.patch(
            server.url(f"/code/{CODE_ID}"), json={"language": "javascript"}, timeout=10
        )
        assert patched.status_code == 200 and patched.json()["language"] == "javascript"
        logs = requests.get(server.url("/codelog"), params={"run_id": RUN_ID}, timeout=10).json()
        assert logs == {"data": [], "total": 0, "page": 1, "last_page": 0}
    finally:
        server.stop()
