"""Project secrets and response headers through a real ``codeactions serve``, in Python,
JavaScript and Go, on SQLite and PostgreSQL (issue 15, items 2 and 3).

One code per language does everything at once: it reads its project's secret, logs it,
prints it, checks the process environment for it, answers a binary body holding it,
and sets response headers (valid ones, hop-by-hop ones and an injection attempt). The
same code in another project must find no secret.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from codeactions_core.secret_box import SecretBox, new_key
from codeactions_core.testing.server import CodeClient, RunningServer, run_cli, start_server

pytestmark = pytest.mark.e2e

TOKEN = "secrets-e2e-token"
AUTH = {"Authorization": f"Token {TOKEN}"}
VALUE = "sk_live_9f8e7d6c5b4a"
PROJECT, OTHER = "proj-secrets", "proj-other"
PNG = b"\x89PNG"

PYTHON = r"""
import os

def Run(engine):
    value = engine.secrets.get("API_TOKEN") or ""
    engine.log.info("token is " + value)
    print("stdout has " + value)
    try:  # the sandbox may refuse it; os.environ is the process environment either way
        environ = open("/proc/self/environ", "rb").read().decode(errors="replace")
    except OSError:
        environ = ""
    in_env = bool(value) and (value in environ or any(value in v for v in os.environ.values()))
    engine.result.set(b"\x89PNG" + value.encode() + b"|" + value[::-1].encode(), 201, "image/png",
                      headers={"Location": "/files/1", "Cache-Control": "no-store",
                               "Set-Cookie": ["a=1", "b=2"], "X-Has": "yes" if value else "no",
                               "X-Env": "yes" if in_env else "no", "X-Secret": value or "none",
                               "Connection": "upgrade", "Proxy-Thing": "x",
                               "X-Bad": "x\r\nInjected: 1"})
"""

JAVASCRIPT = r"""
const fs = require("fs");
exports.Run = async function (engine) {
  const value = engine.secrets.get("API_TOKEN") || "";
  engine.log.info("token is " + value);
  console.log("stdout has " + value);
  let environ = "";
  try { environ = fs.readFileSync("/proc/self/environ", "latin1"); } catch (error) { /* refused */ }
  const inProcessEnv = Object.values(process.env).some((v) => v.includes(value));
  const inEnv = value !== "" && (environ.includes(value) || inProcessEnv);
  const reversed = [...value].reverse().join("");
  const body = Buffer.concat([Buffer.from([0x89]), Buffer.from("PNG" + value + "|" + reversed)]);
  engine.result.set(body, 201, "image/png", {
    "Location": "/files/1", "Cache-Control": "no-store", "Set-Cookie": ["a=1", "b=2"],
    "X-Has": value ? "yes" : "no", "X-Env": inEnv ? "yes" : "no", "X-Secret": value || "none",
    "Connection": "upgrade", "Proxy-Thing": "x", "X-Bad": "x\r\nInjected: 1",
  });
};
"""

GO = r"""package main

import (
	"fmt"
	"os"
	"strings"
)

func Run(engine *Engine) {
	value := engine.Secrets.Get("API_TOKEN")
	engine.Log.Info("token is " + value)
	fmt.Println("stdout has " + value)
	environ, _ := os.ReadFile("/proc/self/environ")
	inProcessEnv := strings.Contains(strings.Join(os.Environ(), "\n"), value)
	inEnv := value != "" && (strings.Contains(string(environ), value) || inProcessEnv)
	runes := []rune(value)
	for i, j := 0, len(runes)-1; i < j; i, j = i+1, j-1 {
		runes[i], runes[j] = runes[j], runes[i]
	}
	has, env, shown := "no", "no", "none"
	if value != "" {
		has, shown = "yes", value
	}
	if inEnv {
		env = "yes"
	}
	body := append([]byte{0x89}, []byte("PNG"+value+"|"+string(runes))...)
	engine.Result.Set(body, 201, "image/png", map[string]string{
		"Location": "/files/1", "Cache-Control": "no-store", "X-Has": has, "X-Env": env,
		"X-Secret": shown, "Connection": "upgrade", "Proxy-Thing": "x", "X-Bad": "x\r\nInjected: 1",
	}, map[string][]string{"Set-Cookie": {"a=1", "b=2"}})
}
"""

SOURCES = {"python": PYTHON, "javascript": JAVASCRIPT, "go": GO}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(request, tmp_path_factory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp(f"secrets-{request.param}")
    key = new_key()
    settings = {
        "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp / "data"),
        "FLOWS_CODE_ACTIONS_AUTH_TOKEN": TOKEN,
        "FLOWS_CODE_ACTIONS_SECRETS_KEY": key,
    }
    if request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
        uri = request.getfixturevalue("new_postgres_database")()
        settings.update(
            {"FLOWS_CODE_ACTIONS_DB_TYPE": "postgres", "FLOWS_CODE_ACTIONS_DB_URI": uri}
        )
        assert run_cli("migrate", settings=settings).returncode == 0
    server = start_server(settings, tmp)
    try:
        put = requests.put(
            server.url(f"/projects/{PROJECT}/secrets/API_TOKEN"),
            json={"value": VALUE},
            headers=AUTH,
            timeout=30,
        )
        assert put.status_code == 200, put.text
        yield {
            "server": server,
            "settings": settings,
            "key": key,
            "kind": request.param,
            "put": put,
            "client": CodeClient(server, token=TOKEN),
            "tmp": tmp,
        }
    finally:
        server.stop()


def api(server: RunningServer, method: str, path: str, **options) -> requests.Response:
    options["headers"] = {**AUTH, **options.get("headers", {})}
    return requests.request(method, server.url(path), timeout=60, **options)


def run_record(server: RunningServer, code_id: str) -> dict:
    runs = api(server, "GET", "/coderun", params={"code_id": code_id}).json()
    return runs[0]


def test_answers_show_names_and_times_never_values(world):
    server = world["server"]
    assert set(world["put"].json()) == {"project_uuid", "name", "created_at", "updated_at"}
    listed = api(server, "GET", f"/projects/{PROJECT}/secrets")
    assert [s["name"] for s in listed.json()] == ["API_TOKEN"]
    assert VALUE not in listed.text and VALUE not in world["put"].text
    replaced = api(
        server,
        "PUT",
        f"/projects/{PROJECT}/secrets/SPARE",
        data="raw text value",
        headers={**AUTH, "Content-Type": "text/plain"},
    )
    assert replaced.status_code == 200 and "raw text value" not in replaced.text
    assert api(server, "DELETE", f"/projects/{PROJECT}/secrets/SPARE").status_code == 200
    assert api(server, "DELETE", f"/projects/{PROJECT}/secrets/SPARE").status_code == 404
    assert [s["name"] for s in api(server, "GET", f"/projects/{PROJECT}/secrets").json()] == [
        "API_TOKEN"
    ]


@pytest.mark.parametrize(
    ("path", "options", "expected"),
    [
        ("/secrets/a%2Fb", {"json": {"value": "long enough"}}, "contains '/'"),
        ("/secrets/1ABC", {"json": {"value": "long enough"}}, "is invalid"),
        ("/secrets/BAD-NAME", {"json": {"value": "long enough"}}, "is invalid"),
        ("/secrets/SHORT", {"json": {"value": "abc"}}, "at least 4 characters"),
        ("/secrets/NOVALUE", {"json": {"other": "x"}}, '{"value"'),
        (
            "/secrets/NOTJSON",
            {"data": "{", "headers": {**AUTH, "Content-Type": "application/json"}},
            "not valid JSON",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_problem(world, path, options, expected):
    answer = api(world["server"], "PUT", f"/projects/{PROJECT}{path}", **options)
    assert answer.status_code == 400, answer.text
    assert expected in answer.json()["message"]


@pytest.mark.parametrize("language", ["python", "javascript", "go"])
def test_code_reads_its_own_secret_masked_everywhere_with_headers_and_a_binary_body(
    world, language
):
    client, server = world["client"], world["server"]
    client.require_runtime(language)
    code_id = client.create(SOURCES[language], language, PROJECT, timeout=60)
    answer = requests.get(
        server.url(f"/action/endpoint/{code_id}"), timeout=120, allow_redirects=False
    )
    assert answer.status_code == 201, answer.text
    # The code had the real value (its reverse went through), the answer has it masked.
    assert answer.content == PNG + b"***|" + VALUE[::-1].encode()
    assert answer.headers["Content-Type"] == "image/png"
    assert answer.headers["Location"] == "/files/1"
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.raw.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
    assert (answer.headers["X-Has"], answer.headers["X-Env"], answer.headers["X-Secret"]) == (
        "yes",
        "no",
        "***",
    )
    assert "Injected" not in answer.headers and "X-Bad" not in answer.headers
    assert "Proxy-Thing" not in answer.headers
    assert answer.headers.get("Connection", "").lower() != "upgrade"
    # The run record and its logs: masked, with the refused headers named.
    run = run_record(server, code_id)
    logs = api(server, "GET", "/codelog", params={"run_id": run["id"]}).json()["data"]
    stored = json.dumps(run) + json.dumps(logs)
    assert VALUE not in stored and VALUE[::-1] in base64.b64decode(run["result"]).decode(
        errors="replace"
    )
    assert run["extra"]["result_encoding"] == "base64"
    assert "token is ***" in [line["content"] for line in logs]
    assert "stdout has ***" in run["extra"]["stdout"]
    errors = run["extra"]["response_errors"]
    assert any("'Connection' is refused" in e for e in errors)
    assert any("'Proxy-Thing' is refused" in e for e in errors)
    assert any("'X-Bad' is refused" in e and "CR, LF" in e for e in errors)
    assert run["extra"]["headers"]["X-Secret"] == ["***"]
    assert VALUE not in server.log()
    # Another project's code: no secret of this project.
    other_id = client.create(SOURCES[language], language, OTHER, timeout=60)
    other = requests.get(
        server.url(f"/action/endpoint/{other_id}"), timeout=120, allow_redirects=False
    )
    assert (other.status_code, other.headers["X-Has"], other.headers["X-Secret"]) == (
        201,
        "no",
        "none",
    )
    assert other.content == PNG + b"|"


def test_full_media_types_and_text_results(world):
    client = world["client"]
    code_id = client.create(
        "def Run(engine):\n"
        '    engine.result.set("a,b\\n1,2\\n", 200, "text/csv; charset=utf-8",\n'
        '                      headers={"Content-Disposition": "attachment; filename=x.csv"})\n',
        project=PROJECT,
    )
    answer = requests.get(world["server"].url(f"/action/endpoint/{code_id}"), timeout=60)
    assert (answer.status_code, answer.text) == (200, "a,b\n1,2\n")
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert answer.headers["Content-Disposition"] == "attachment; filename=x.csv"
    old_style = client.run(
        'def Run(engine):\n    engine.result.set({"a": 1}, 200, "json")\n', project=PROJECT
    )
    assert old_style.json() == {"a": 1}


def test_a_request_carrying_the_value_is_stored_masked(world):
    client, server = world["client"], world["server"]
    code_id = client.create(
        'def Run(engine):\n    engine.result.set(engine.params.get("q"))\n', project=PROJECT
    )
    answer = requests.post(
        server.url(f"/run/{code_id}"),
        params={"q": VALUE},
        data=f"body {VALUE}",
        headers={**AUTH, "X-Echo": VALUE},
        timeout=60,
    )
    run = answer.json()["result"]
    assert run["status"] == "completed" and run["result"] == "***"
    assert run["params"] == {"q": "***"} and run["body"] == "body ***"
    assert run["headers"]["X-Echo"] == ["***"]
    assert VALUE not in json.dumps(run_record(server, code_id))


def test_the_database_holds_no_plaintext(world):
    if world["kind"] == "sqlite":
        files = list(Path(world["settings"]["FLOWS_CODE_ACTIONS_DATA_DIR"]).glob("codeactions.db*"))
        assert files
        for path in files:
            assert VALUE.encode() not in path.read_bytes(), path
        return
    import psycopg2

    connection = psycopg2.connect(world["settings"]["FLOWS_CODE_ACTIONS_DB_URI"])
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT project_uuid, name, ciphertext FROM project_secrets")
            rows = cursor.fetchall()
            cursor.execute("SELECT string_agg(t::text, ' ') FROM project_secrets t")
            (everything,) = cursor.fetchone()
            cursor.execute("SELECT string_agg(t::text, ' ') FROM coderuns t")
            (runs,) = cursor.fetchone()
            cursor.execute("SELECT string_agg(t::text, ' ') FROM codelogs t")
            (logs,) = cursor.fetchone()
    finally:
        connection.close()
    assert (PROJECT, "API_TOKEN") in [(p, n) for p, n, _ in rows]
    assert VALUE not in everything and VALUE not in (runs or "") and VALUE not in (logs or "")
    stored = {(p, n): c for p, n, c in rows}[(PROJECT, "API_TOKEN")]
    assert SecretBox([world["key"]]).decrypt(stored) == VALUE


def test_rotation_re_encrypts_with_the_newest_key(world):
    settings, old = world["settings"], world["key"]
    newest = new_key()
    rotated = run_cli(
        "secrets",
        "rotate",
        settings={**settings, "FLOWS_CODE_ACTIONS_SECRETS_KEY": f"{newest},{old}"},
    )
    assert rotated.returncode == 0, rotated.stderr
    assert "re-encrypted 1 secret" in rotated.stdout
    assert VALUE not in rotated.stdout + rotated.stderr
    # The stored value now opens with the newest key alone.
    from codeactions_core.settings import Settings
    from codeactions_core.wiring import build_services

    services = build_services(
        Settings.from_env({**settings, "FLOWS_CODE_ACTIONS_SECRETS_KEY": newest})
    )
    try:
        assert services.secrets.for_run(PROJECT) == {"API_TOKEN": VALUE}
    finally:
        services.close()
