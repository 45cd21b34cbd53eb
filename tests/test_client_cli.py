"""``codeactions client`` end to end: the real command against a real server."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from codeactions_core.client.api import (
    EXIT_AUTH,
    EXIT_FAILED,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)
from codeactions_core.settings import ClientEnvironment
from codeactions_core.testing.server import (
    RunningServer,
    child_env,
    cli_command,
    free_port,
    start_server,
)

pytestmark = pytest.mark.e2e

HELLO = """def Run(engine):
    engine.log.info("hello " + engine.params.get("name", ""))
    engine.result.set({"hi": engine.params.get("name")}, content_type="json")
"""
BOOM = """def Run(engine):
    raise ValueError("boom")
"""
ECHO_BODY = """def Run(engine):
    engine.result.set(engine.body)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[RunningServer]:
    logs = tmp_path_factory.mktemp("client-server")
    running = start_server({"FLOWS_CODE_ACTIONS_DATA_DIR": str(logs / "data")}, logs)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def client(server, tmp_path):
    """Run ``codeactions client ARGS`` in a project folder, the URL from the environment."""
    home = tmp_path / "home"
    home.mkdir()

    def call(
        *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess:
        variables = {"CODEACTIONS_URL": server.base_url, "HOME": str(home), **(env or {})}
        return subprocess.run(
            cli_command("client", *args),
            cwd=cwd or tmp_path / "proj",
            env=child_env({}, variables),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    (tmp_path / "proj").mkdir()
    return call


def lines_of(stream) -> queue.Queue[str]:
    """The lines a process prints, read by a thread so that waiting for them has a deadline."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    return lines


def read_until(lines: queue.Queue[str], text: str, seconds: float = 30) -> str:
    deadline, seen = time.monotonic() + seconds, ""
    while text not in seen and time.monotonic() < deadline:
        try:
            seen += lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
    return seen


def json_of(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_init_push_changed_only_run_and_pull(client, tmp_path, server):
    project = f"P-{free_port()}"
    assert client("init", project).returncode == 0
    folder = tmp_path / "proj"
    assert f'project_uuid = "{project}"' in (folder / "codeactions.toml").read_text()
    (folder / "hello.py").write_text(HELLO)
    (folder / "echo.py").write_text(ECHO_BODY)
    with open(folder / "codeactions.toml", "a") as config:
        config.write('\n[codes.hello]\ntype = "endpoint"\ntimeout = 7\n')

    first = json_of(client("push", "--json"))
    assert {row["name"]: row["action"] for row in first["codes"]} == {
        "hello": "created",
        "echo": "created",
    }
    hello_id = next(row["id"] for row in first["codes"] if row["name"] == "hello")
    stored = requests.get(server.url(f"/code/{hello_id}"), timeout=10).json()
    assert (stored["source"], stored["timeout"], stored["type"]) == (HELLO, 7, "endpoint")

    (folder / "hello.py").write_text(HELLO.replace("hello ", "hi "))
    second = json_of(client("push", "--json"))
    assert {row["name"]: (row["action"], row["detail"]) for row in second["codes"]} == {
        "hello": ("updated", "+1 -1"),
        "echo": ("unchanged", ""),
    }
    human = client("push")
    assert human.returncode == 0 and "0 created, 0 updated, 2 unchanged" in human.stdout

    ran = json_of(client("run", "hello", "-p", "name=ana", "--json"))
    assert (ran["status"], json.loads(ran["result"])) == ("completed", {"hi": "ana"})
    assert [line["content"] for line in ran["logs"]] == ["hi ana"]
    (tmp_path / "body.txt").write_text("from a file")
    assert (
        json_of(client("run", "echo", "--body", f"@{tmp_path / 'body.txt'}", "--json"))["result"]
        == "from a file"
    )
    printed = client("run", "hello", "-p", "name=bo")
    assert printed.returncode == 0 and "completed" in printed.stdout and "hi bo" in printed.stdout

    elsewhere = tmp_path / "elsewhere"
    assert client("-C", str(elsewhere), "init", project).returncode == 0
    pulled = json_of(client("-C", str(elsewhere), "pull", "--json"))
    assert {row["name"] for row in pulled["codes"]} == {"hello", "echo"}
    assert (elsewhere / "hello.py").read_text() == HELLO.replace("hello ", "hi ")
    assert "timeout = 7" in (elsewhere / "codeactions.toml").read_text()


def test_exit_codes_say_what_happened(client, tmp_path, server):
    project = f"P-{free_port()}"
    assert client("run", "x").returncode == EXIT_USAGE  # no codeactions.toml
    assert client("init", project).returncode == 0
    (tmp_path / "proj" / "boom.py").write_text(BOOM)
    assert client("push").returncode == 0
    failed = client("run", "boom")
    assert (
        failed.returncode == EXIT_FAILED and "failed" in failed.stdout and "boom" in failed.stdout
    )
    missing = client("run", "nothing")
    assert missing.returncode == EXIT_REFUSED and "no code named 'nothing'" in missing.stderr
    assert client("--url", f"http://127.0.0.1:{free_port()}", "push").returncode == EXIT_UNREACHABLE
    assert client("run", "boom", "-p", "no-equals-sign").returncode == EXIT_USAGE


def test_the_token_comes_from_the_config_file_and_a_wrong_one_is_exit_4(tmp_path_factory, tmp_path):
    logs = tmp_path_factory.mktemp("client-auth")
    guarded = start_server(
        {
            "FLOWS_CODE_ACTIONS_DATA_DIR": str(logs / "data"),
            "FLOWS_CODE_ACTIONS_AUTH_TOKEN": "s3cret",
        },
        logs,
    )
    try:
        project_dir = tmp_path / "p"
        base = {"HOME": str(tmp_path)}

        def call(*args: str, **env: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                cli_command("client", "-C", str(project_dir), *args),
                env=child_env({}, {**base, **env}),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )

        assert call("init", "P", "--url", guarded.base_url).returncode == 0
        (project_dir / "a.py").write_text(HELLO)
        assert call("push").returncode == EXIT_AUTH
        assert call("push", CODEACTIONS_TOKEN="wrong").returncode == EXIT_AUTH
        config = tmp_path / ".config" / "codeactions" / "client.toml"
        config.parent.mkdir(parents=True)
        config.write_text('token = "s3cret"\n')
        assert call("push").returncode == 0, "the token from ~/.config/codeactions/client.toml"
        assert call("push", "--token", "wrong").returncode == EXIT_AUTH, "a flag wins over the file"
    finally:
        guarded.stop()


def test_logs_follow_prints_runs_as_they_finish(client, tmp_path, server):
    project = f"P-{free_port()}"
    assert client("init", project).returncode == 0
    (tmp_path / "proj" / "hello.py").write_text(HELLO)
    code_id = json_of(client("push", "--json"))["codes"][0]["id"]
    requests.get(server.url(f"/action/endpoint/{code_id}"), params={"name": "before"}, timeout=30)
    past = client("logs", "hello")
    assert past.returncode == 0 and "hello before" in past.stdout

    follower = subprocess.Popen(
        cli_command(
            "client", "logs", "hello", "--follow", "--interval", "0.2", "-n", "0", "--json"
        ),
        cwd=tmp_path / "proj",
        env=child_env({}, {"CODEACTIONS_URL": server.base_url, "HOME": str(tmp_path)}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        errors, output = lines_of(follower.stderr), lines_of(follower.stdout)
        assert "following the runs of hello" in read_until(errors, "following"), (
            "the past is listed first"
        )
        requests.get(
            server.url(f"/action/endpoint/{code_id}"), params={"name": "later"}, timeout=30
        )
        seen = read_until(output, "hello later")
        assert "hello later" in seen and "hello before" not in seen
    finally:
        follower.kill()
        follower.wait()


def test_flows_push_and_run_from_a_yaml_file(client, tmp_path):
    project = f"P-{free_port()}"
    assert client("init", project).returncode == 0
    folder = tmp_path / "proj"
    (folder / "hello.py").write_text(HELLO)
    assert client("push").returncode == 0
    (folder / "greet.yaml").write_text(
        "name: greet\nsteps:\n  - id: hello\n    type: code\n"
        "    config: {code: hello, params: {name: '{{variables.who}}'}}\n"
    )
    pushed = json_of(client("flows", "push", "greet.yaml", "--json"))
    assert [(row["action"], row["version"]) for row in pushed["flows"]] == [("created", 1)]
    again = json_of(client("flows", "push", "greet.yaml", "--json"))
    assert [(row["action"], row["version"]) for row in again["flows"]] == [("unchanged", 1)]
    (folder / "greet.json").write_text(
        json.dumps(
            {
                "name": "greet",
                "steps": [
                    {
                        "id": "hello",
                        "type": "code",
                        "config": {"code": "hello", "params": {"name": "json {{variables.who}}"}},
                    }
                ],
            }
        )
    )
    changed = json_of(client("flows", "push", "greet.json", "--json"))
    assert [(row["action"], row["version"]) for row in changed["flows"]] == [("updated", 2)]

    done = json_of(client("flows", "run", "greet", "--var", "who=bob", "--json"))
    assert done["status"] == "completed" and done["result"] == {"hello": {"hi": "json bob"}}
    assert client("flows", "run", "nope").returncode == EXIT_REFUSED


def test_the_client_reads_its_url_token_and_config_file_through_settings():
    assert ClientEnvironment.from_env({"HOME": "/h"}) == ClientEnvironment(
        url="", token="", config="/h/.config/codeactions/client.toml"
    )
    given = ClientEnvironment.from_env(
        {
            "HOME": "/h",
            "CODEACTIONS_URL": " http://127.0.0.1:1 ",
            "CODEACTIONS_TOKEN": "t",
            "CODEACTIONS_CONFIG": "/c.toml",
        }
    )
    assert (given.url, given.token, given.config) == ("http://127.0.0.1:1", "t", "/c.toml")
