"""Hostile requests and responses through a real `codeactions serve` on PostgreSQL: statuses a
code may not answer with, JSON bombs, chunked bodies, refused bodies on a kept-alive connection,
and the server's own caps on what a run stores."""

from __future__ import annotations

import http.client
import json

import pytest
import requests

from codeactions_core.testing.server import run_cli, start_server

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

QUERY = {"name": "h", "language": "python", "type": "endpoint", "project_uuid": "P"}
MAX_LOG_LINES = 50


@pytest.fixture(scope="module")
def server(tmp_path_factory, new_postgres_database):
    settings = {
        "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path_factory.mktemp("data")),
        "FLOWS_CODE_ACTIONS_DB_TYPE": "postgres",
        "FLOWS_CODE_ACTIONS_DB_URI": new_postgres_database("ca_hostile"),
        "FLOWS_CODE_ACTIONS_RUN_MAX_LOG_LINES": str(MAX_LOG_LINES),
        "FLOWS_CODE_ACTIONS_RUN_MAX_RESULT_KB": "16",
    }
    migrated = run_cli("migrate", settings=settings)
    assert migrated.returncode == 0, migrated.stderr
    server = start_server(settings, tmp_path_factory.mktemp("logs"))
    yield server
    server.stop()


def create(server, source: str) -> str:
    answer = requests.post(server.url("/code"), params=QUERY, data=source.encode(), timeout=30)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def runs_of(server, code_id: str) -> list[dict]:
    return requests.get(server.url("/coderun"), params={"code_id": code_id}, timeout=10).json()


def logs_of(server, run_id: str) -> list[dict]:
    lines, page = [], 1
    while True:
        answer = requests.get(
            server.url("/codelog"), params={"run_id": run_id, "page": page}, timeout=10
        ).json()
        lines += answer["data"]
        if page >= answer["last_page"]:
            return lines
        page += 1


# --- 4. statuses, JSON bombs, chunked bodies, keep-alive ---------------------------------------


@pytest.mark.parametrize("status", [100, 101, 199, 600, 999, '"teapot"'])
def test_a_code_cannot_answer_with_a_status_outside_200_to_599(server, status):
    code = create(server, f'def Run(engine):\n    engine.result.set("x", status_code={status})\n')
    answer = requests.get(server.url(f"/action/endpoint/{code}"), timeout=30)
    assert answer.status_code == 500
    assert "HTTP status" in answer.json()["message"] and "200 to 599" in answer.json()["message"]
    (run,) = runs_of(server, code)
    assert run["status"] == "failed" and "200 to 599" in run["result"]


@pytest.mark.parametrize("status", [200, 204, 302, 418, 599])
def test_a_code_may_answer_with_any_status_from_200_to_599(server, status):
    code = create(server, f'def Run(engine):\n    engine.result.set("", status_code={status})\n')
    assert (
        requests.get(
            server.url(f"/action/endpoint/{code}"), allow_redirects=False, timeout=30
        ).status_code
        == status
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"source": ' + b"[" * 50000 + b"]" * 50000 + b"}", "nested"),
        (b'{"source": "x", "timeout": ' + b"7" * 5000 + b"}", "digits"),
        (
            (
                b'{"name": "\\ud800", "source": "x", "language": "python", '
                b'"type": "endpoint", "project_uuid": "P"}'
            ),
            "surrogate",
        ),
    ],
    ids=["deep nesting", "5000-digit number", "lone surrogate"],
)
def test_json_bombs_answer_400_naming_the_problem(server, body, problem):
    for path in ("/code", "/flows"):
        answer = requests.post(
            server.url(path), data=body, headers={"Content-Type": "application/json"}, timeout=30
        )
        assert answer.status_code == 400, answer.text
        assert problem in answer.json()["message"]


def test_chunked_bodies_reach_the_code_intact(server):
    code = create(server, "def Run(engine):\n    engine.result.set(engine.body)\n")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        parts = [b"first part, ", "second: é, ".encode(), b"x" * 10000]
        connection.request(
            "POST", f"/action/endpoint/{code}", body=iter(parts), encode_chunked=True
        )
        answer = connection.getresponse()
        assert (answer.status, answer.read()) == (200, b"".join(parts))
        source = b'def Run(engine):\n    engine.result.set("sent in chunks")\n'
        connection.request(
            "POST",
            "/code?" + "&".join(f"{k}={v}" for k, v in QUERY.items()),
            body=iter([source[:10], source[10:]]),
            encode_chunked=True,
        )
        created = connection.getresponse()
        assert created.status == 201 and json.loads(created.read())["source"] == source.decode()
    finally:
        connection.close()


def test_a_refused_body_keeps_the_connection_usable(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        path = "/code?" + "&".join(f"{k}={v}" for k, v in QUERY.items())
        connection.request("POST", path, body=b"#" * (1024 * 1024 + 10))
        refused = connection.getresponse()
        assert refused.status == 400 and "1048576" in json.loads(refused.read())["message"]
        connection.request("POST", path, body=iter([b"#" * (600 * 1024)] * 2), encode_chunked=True)
        chunked = connection.getresponse()
        assert chunked.status == 400 and "smaller than" in json.loads(chunked.read())["message"]
        connection.request("GET", "/healthz")
        following = connection.getresponse()
        assert (following.status, json.loads(following.read())) == (200, {"status": "ok"})
    finally:
        connection.close()


# --- 5. the server's own caps, storable text, one terminal state -------------------------------


def test_the_server_caps_log_lines_whatever_the_sandbox_allows(server):
    code = create(
        server, "def Run(engine):\n    for n in range(300):\n        engine.log.info(f'line {n}')\n"
    )
    assert requests.get(server.url(f"/action/endpoint/{code}"), timeout=30).status_code == 200
    (run,) = runs_of(server, code)
    lines = logs_of(server, run["id"])
    assert len(lines) == MAX_LOG_LINES
    assert (
        lines[0]["content"] == "line 0"
        and "251 more log lines were dropped" in lines[-1]["content"]
    )


def test_the_server_caps_the_result(server):
    code = create(server, 'def Run(engine):\n    engine.result.set("y" * 20000)\n')
    answer = requests.get(server.url(f"/action/endpoint/{code}"), timeout=30)
    assert (
        answer.status_code == 500
        and "larger than the 16384 bytes allowed" in answer.json()["message"]
    )
    assert runs_of(server, code)[0]["status"] == "failed"


def test_nul_bytes_are_stored_as_replacement_characters_and_the_run_ends(server):
    code = create(
        server,
        'def Run(engine):\n    engine.log.info("log\\x00line")\n'
        '    engine.result.set("a\\x00b" + engine.body, content_type="te\\x00xt")\n',
    )
    answer = requests.post(
        server.url(f"/action/endpoint/{code}"), params={"p": "q\x00r"}, data=b"c\x00d", timeout=30
    )
    assert answer.status_code == 200, answer.text
    (run,) = runs_of(server, code)
    assert run["status"] == "completed"
    assert (
        run["result"] == "a\ufffdbc\ufffdd"
        and run["body"] == "c\ufffdd"
        and run["params"] == {"p": "q\ufffdr"}
    )
    assert logs_of(server, run["id"])[0]["content"] == "log\ufffdline"
