"""Immutable code versions end to end: a real `codeactions serve` on PostgreSQL (and the
first-read upgrade of codes stored before versions, on SQLite and by the PostgreSQL migration)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import psycopg2
import pytest
import requests

from codeactions_core.model import CodeType, NewCode
from codeactions_core.services.codes import CodeService
from codeactions_core.settings import Settings
from codeactions_core.testing.server import RunningServer, run_cli, start_server

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

V1 = "def Run(engine):\n    engine.result.set('one')\n"
V2 = "def Run(engine):\n    engine.result.set('two')\n"
PROJECT = "versions-project"


@pytest.fixture(scope="module")
def server(new_postgres_database, tmp_path_factory) -> Iterator[RunningServer]:
    settings = {
        "FLOWS_CODE_ACTIONS_DB_TYPE": "postgres",
        "FLOWS_CODE_ACTIONS_DB_URI": new_postgres_database(),
    }
    assert run_cli("migrate", settings=settings).returncode == 0
    running = start_server(settings, tmp_path_factory.mktemp("versions"))
    try:
        yield running
    finally:
        running.stop()


def create(server: RunningServer, source: str = V1) -> dict:
    answer = requests.post(
        server.url("/code"),
        json={
            "name": "versioned",
            "type": "endpoint",
            "language": "python",
            "project_uuid": PROJECT,
            "source": source,
            "note": "first draft",
        },
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_every_program_change_is_a_version_and_runs_record_theirs(server):
    code = create(server)
    url = server.url(f"/code/{code['id']}")
    assert code["version"] == 1
    changed = requests.patch(url, params={"note": "say two"}, data=V2, timeout=30).json()
    assert (changed["version"], changed["source"]) == (
        2,
        V2,
    )  # PATCH answers the new current version
    assert requests.patch(url, json={"name": "renamed"}, timeout=30).json()["version"] == 2
    assert requests.patch(url, json={"timeout": 30}, timeout=30).json()["version"] == 3
    assert (
        requests.patch(url, data=V2, timeout=30).json()["version"] == 3
    )  # the same source: no version

    listed = requests.get(f"{url}/versions", timeout=30).json()
    assert [(v["number"], v["note"]) for v in listed] == [
        (3, ""),
        (2, "say two"),
        (1, "first draft"),
    ]
    assert "source" not in listed[0]
    one = requests.get(f"{url}/versions/1", timeout=30).json()
    assert (one["source"], one["sha256"], one["timeout"]) == (
        V1,
        hashlib.sha256(V1.encode()).hexdigest(),
        60,
    )

    diff = requests.get(f"{url}/diff", params={"from": 1, "to": 3}, timeout=30).json()
    assert "-    engine.result.set('one')\n+    engine.result.set('two')\n" in diff["diff"]
    assert diff["changes"] == {"timeout": {"from": 60, "to": 30}}

    current = requests.post(server.url(f"/run/{code['id']}"), timeout=60).json()["result"]
    pinned = requests.post(
        server.url(f"/run/{code['id']}"), params={"version": 1}, timeout=60
    ).json()["result"]
    assert (current["result"], current["version"]) == ("two", 3)
    assert (pinned["result"], pinned["version"]) == ("one", 1)
    endpoint = requests.get(
        server.url(f"/action/endpoint/{code['id']}"), params={"version": "1"}, timeout=60
    )
    assert endpoint.text == "one"
    stored = requests.get(server.url(f"/coderun/{pinned['id']}"), timeout=30).json()
    assert stored["version"] == 1

    restored = requests.post(f"{url}/versions/1/restore", timeout=30).json()
    assert (restored["version"], restored["source"], restored["timeout"]) == (4, V1, 60)
    assert requests.get(f"{url}/versions/4", timeout=30).json()["note"] == "restored version 1"
    assert requests.post(server.url(f"/endpoint/{code['id']}"), timeout=60).text == "one"


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("/versions/9", {}, 404, "has no version 9"),
        ("/versions/zero", {}, 400, "version must be a positive integer, got 'zero'"),
        ("/versions/0", {}, 400, "version must be a positive integer, got '0'"),
        ("/diff", {"to": "1"}, 400, "from is required"),
        ("/diff", {}, 400, "from and to are required"),
        ("/diff", {"from": "1", "to": "5"}, 404, "has no version 5"),
    ],
)
def test_bad_version_requests_name_the_problem(server, path, params, status, message):
    code = create(server)
    answer = requests.get(server.url(f"/code/{code['id']}{path}"), params=params, timeout=30)
    assert answer.status_code == status and message in answer.json()["message"]


def test_a_run_of_an_unknown_version_is_refused_and_not_recorded(server):
    code = create(server)
    for route, method in (
        (f"/run/{code['id']}", "post"),
        (f"/action/endpoint/{code['id']}", "get"),
    ):
        answer = requests.request(method, server.url(route), params={"version": "7"}, timeout=30)
        assert answer.status_code == 404 and "has no version 7" in answer.json()["message"]
    bad = requests.post(server.url(f"/run/{code['id']}"), params={"version": "v1"}, timeout=30)
    assert bad.status_code == 400 and "version must be a positive integer" in bad.json()["message"]
    assert (
        requests.get(server.url("/coderun"), params={"code_id": code["id"]}, timeout=30).json()
        == []
    )
    restore = requests.post(server.url(f"/code/{code['id']}/versions/3/restore"), timeout=30)
    assert restore.status_code == 404


def test_a_flow_code_step_may_pin_a_version(server):
    code = create(server)
    requests.patch(server.url(f"/code/{code['id']}"), data=V2, timeout=30).raise_for_status()
    flow = requests.post(
        server.url("/flows"), json={"name": "pins", "project_uuid": PROJECT}, timeout=30
    ).json()
    steps = [
        {
            "id": "old",
            "type": "code",
            "name": "old",
            "config": {"code_id": code["id"], "version": 1},
        },
        {"id": "new", "type": "code", "name": "new", "config": {"code_id": code["id"]}},
    ]
    draft = requests.post(
        server.url(f"/flows/{flow['id']}/versions"), json={"steps": steps}, timeout=30
    ).json()
    requests.post(
        server.url(f"/flows/{flow['id']}/versions/{draft['version_number']}/publish"), timeout=30
    ).raise_for_status()
    execution = requests.post(
        server.url(f"/flows/{flow['id']}/executions"), params={"wait": "true"}, json={}, timeout=90
    ).json()
    assert execution["status"] == "completed", execution
    assert (execution["result"]["old"], execution["result"]["new"]) == ("one", "two")


def test_the_postgres_migration_gives_stored_codes_version_1(new_postgres_database):
    uri = new_postgres_database()
    settings = {"FLOWS_CODE_ACTIONS_DB_TYPE": "postgres", "FLOWS_CODE_ACTIONS_DB_URI": uri}
    assert run_cli("migrate", "--to", "10", settings=settings).returncode == 0
    connection = psycopg2.connect(uri)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO codes (id, name, type, source, language, project_uuid, timeout, "
                "created_at, updated_at) VALUES (gen_random_uuid(), 'old', 'endpoint', %s, "
                "'python', 'p', 30, now(), now()) RETURNING id",
                ("print('olá ✓')\n",),
            )
            (code_id,) = cursor.fetchone()
        assert run_cli("migrate", settings=settings).returncode == 0
        with connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.version, v.number, v.sha256, v.timeout FROM codes c "
                "JOIN code_versions v ON v.code_id = c.id WHERE c.id = %s",
                (code_id,),
            )
            rows = cursor.fetchall()
    finally:
        connection.close()
    assert rows == [(1, 1, hashlib.sha256("print('olá ✓')\n".encode()).hexdigest(), 30)]


def test_on_sqlite_a_code_stored_before_versions_gets_version_1_on_first_read(tmp_path):
    from codeactions_sql import SqlStore

    store = SqlStore.from_settings(Settings(db_type="sqlite", db_uri=f"sqlite:///{tmp_path}/s.db"))
    try:
        store.migrate()
        legacy = store.codes.create(
            NewCode(
                name="old",
                type=CodeType.ENDPOINT,
                source="x = 1\n",
                language="python",
                project_uuid="p",
                timeout=60,
            )
        )
        assert legacy.version is None
        codes = CodeService(store.codes, versions=store.versions)
        assert codes.get(legacy.id).version == 1
        assert [(v.number, v.source) for v in store.versions.list(legacy.id)] == [(1, "x = 1\n")]
        assert codes.get(legacy.id).version == 1 and len(store.versions.list(legacy.id)) == 1
    finally:
        store.close()
