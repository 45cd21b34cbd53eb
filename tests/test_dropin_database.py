"""An old deployment switching images: a PostgreSQL database the old service left at version 5,
old rows and no codelibs, and nothing set but ``DB_URI=postgres://...`` (issue 12, items 1 and 3).
`codeactions migrate --libs` backfills the libraries from the stored codes and installs them;
the old rows read back as the old service showed them (item 7);
`serve` then runs the old code as it ran before. Also the legacy preset (item 1b)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from codeactions_core.libs.installer import PRESETS, pip_install, preset_requirements
from codeactions_core.testing.server import run_cli, start_server
from tests.support.legacy_database import version_5_database

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

CODE_ID = "0b3a6d1e-5c2f-4a8e-9d7b-1c2e3f4a5b60"
MONGO_ID = "65b2f0c2e4b0a1b2c3d4e5aa"
OLD_RUN_ID = "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
OLD_RUN_MONGO_ID = "65b2f0c2e4b0a1b2c3d4e5ab"
SIX_CODE = (
    "import six\n\n"
    "def Run(engine):\n"
    "    engine.result.set({'text': six.text_type(engine.params.get('who'))}, "
    "content_type='json')\n"
)


def build_version_5_database(uri: str) -> None:
    """The old service's rows on a version-5 database: codes and a run, no codelibs rows."""
    with version_5_database(uri) as cursor:
        cursor.execute(
            "INSERT INTO codes "
            "(id, mongo_object_id, name, type, source, language, project_uuid, timeout) "
            "VALUES (%s, %s, 'old', 'endpoint', %s, 'python', 'proj-old', 30)",
            (CODE_ID, MONGO_ID, SIX_CODE),
        )
        cursor.execute(
            "INSERT INTO codes (name, type, source, language, project_uuid) "
            "VALUES ('std', 'flow', "
            "'import json\ndef Run(engine):\n    engine.result.set(\"x\")\n', "
            "'python', 'proj-old')"
        )
        cursor.execute(
            "INSERT INTO codes (name, type, source, language, project_uuid) "
            "VALUES ('go', 'flow', "
            "'package main\nimport \"fmt\"\nfunc main() { fmt.Println(1) }', "
            "'go', 'proj-old')"
        )
        cursor.execute(
            "INSERT INTO coderuns (id, mongo_object_id, code_id, code_mongo_id, status, result, "
            "extra, params, body, headers, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s, 'completed', 'x', 'null'::jsonb, "
            "NULL, 'b', 'null'::jsonb, '2024-01-15 10:35:00+00', '2024-01-15 10:35:02+00')",
            (OLD_RUN_ID, OLD_RUN_MONGO_ID, CODE_ID, MONGO_ID),
        )


def codelibs(uri: str) -> list[tuple[str, str]]:
    import psycopg2

    with psycopg2.connect(uri) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT name, language FROM codelibs ORDER BY name")
        return cursor.fetchall()


def test_an_old_database_with_only_db_uri_migrates_syncs_libraries_and_runs(
    new_postgres_database, tmp_path
):
    uri = new_postgres_database("ca_dropin").replace("postgresql://", "postgres://", 1)
    build_version_5_database(uri)
    settings = {
        "FLOWS_CODE_ACTIONS_DB_URI": uri,
        "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path / "data"),
    }
    assert codelibs(uri) == []

    migrated = run_cli("migrate", "--libs", settings=settings, timeout=300)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert "postgres schema at version" in migrated.stdout
    assert "recorded 1 libraries" in migrated.stdout and "installed: six" in migrated.stdout
    assert codelibs(uri) == [("six", "python")]
    assert (tmp_path / "data/libs/python/six.py").is_file()

    again = run_cli("libs", "sync", settings=settings, timeout=120)
    assert again.returncode == 0 and "already available: six" in again.stdout, (
        again.stdout + again.stderr
    )

    server = start_server(settings, tmp_path)
    try:
        for code_id in (CODE_ID, MONGO_ID):  # by its UUID and by the ObjectId of the old clients
            answer = requests.get(
                server.url(f"/action/endpoint/{code_id}"), params={"who": "ana"}, timeout=60
            )
            assert (answer.status_code, answer.json()) == (200, {"text": "ana"}), answer.text
        health = requests.get(server.url("/health"), timeout=30).json()
        assert health["services"]["database"]["status"] == "healthy"
        check_records(server)
    finally:
        server.stop()
    assert "postgres store" in server.log()


def check_records(server) -> None:
    """Item 7: the old rows' ids and JSON nulls come back; ObjectId runs keep code_mongo_id;
    after/before are inclusive; an empty log listing has last_page 0."""
    old = requests.get(server.url(f"/coderun/{OLD_RUN_ID}"), timeout=30).json()
    assert (old["mongo_object_id"], old["code_mongo_id"]) == (OLD_RUN_MONGO_ID, MONGO_ID)
    assert (old["extra"], old["params"], old["headers"]) == (None, None, None)
    runs = requests.get(server.url("/coderun"), params={"code_id": CODE_ID}, timeout=30).json()
    by_mongo = [
        run for run in runs if run.get("code_mongo_id") == MONGO_ID and run["id"] != OLD_RUN_ID
    ]
    by_uuid = [run for run in runs if "code_mongo_id" not in run]
    assert len(by_mongo) == 1 and len(by_uuid) == 1, runs
    moment = old["created_at"]
    exact = requests.get(
        server.url("/coderun"),
        timeout=30,
        params={"code_id": CODE_ID, "after": moment, "before": moment},
    ).json()
    assert [run["id"] for run in exact] == [OLD_RUN_ID]
    logs = requests.get(server.url("/codelog"), params={"run_id": OLD_RUN_ID}, timeout=30).json()
    assert logs == {"data": [], "total": 0, "page": 1, "last_page": 0}


def test_the_legacy_preset_is_pinned_and_wheels_only():
    requirements = preset_requirements(PRESETS / "legacy.txt")
    names = {line.partition("==")[0].lower() for line in requirements}
    assert len(requirements) >= 90
    assert {
        "requests",
        "httpx",
        "boto3",
        "pandas",
        "numpy",
        "pydantic",
        "openai",
        "gspread",
        "zeep",
        "beautifulsoup4",
        "python-dateutil",
        "pytz",
        "psycopg2-binary",
        "pymongo",
    } <= names
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.!+_-]+", line) for line in requirements)
    command = pip_install(Path("/target"))
    assert "--only-binary=:all:" in command and "--isolated" in command


def test_a_preset_installs_into_the_libs_directory_without_a_database(tmp_path):
    preset = tmp_path / "tiny.txt"
    preset.write_text("# a tiny preset\ntext-unidecode==1.3\n")
    settings = {
        "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path / "data"),
        # a database that does not exist: installing a preset must not need one
        "FLOWS_CODE_ACTIONS_DB_URI": "postgres://nobody@127.0.0.1:1/none",
    }
    installed = run_cli("libs", "install", "--preset", str(preset), settings=settings, timeout=300)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "installed preset" in installed.stdout
    assert (tmp_path / "data/libs/python/text_unidecode").is_dir()
    loose = tmp_path / "loose.txt"
    loose.write_text("requests>=2\n")
    refused = run_cli("libs", "install", "--preset", str(loose), settings=settings)
    assert refused.returncode != 0 and "name==version" in refused.stderr
    unknown = run_cli("libs", "install", "--preset", "nope", settings=settings)
    assert unknown.returncode != 0 and "legacy" in unknown.stderr
