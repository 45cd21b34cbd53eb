"""What a JavaScript run can see of the machine: Node's own APIs, nothing of the server's."""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Iterator

import pytest
from codeactions_javascript.runtime import HARNESS

from codeactions_core.model import RunStatus

CANARY = "codeactions-js-canary-7c1f"


def test_node_builtins_can_be_required(run):
    source = """
const crypto = require("crypto");
const { createHash } = require("node:crypto");
exports.Run = (engine) => engine.result.set([
  createHash("sha256").update("abc").digest("hex"), crypto.randomUUID().length,
  require("zlib").gunzipSync(require("zlib").gzipSync("round trip")).toString(),
]);
"""
    assert json.loads(run(source).result) == [
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        36,
        "round trip",
    ]


@pytest.fixture
def local_site() -> Iterator[str]:
    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"path": self.path, "agent": self.headers.get("User-Agent")}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_fetch_works_despite_the_address_space_limit(start_runtime, run_on, local_site):
    """Node's fetch runs on WebAssembly, which needs the wasm trap handler off under RLIMIT_AS.
    (The site is on the host's loopback, which the default egress policy refuses: this
    runtime shares the host's network; the egress tests prove the policy itself.)"""
    source = f"""
exports.Run = async (engine) => {{
  const response = await fetch("{local_site}/hi?x=1", {{ headers: {{ "User-Agent": "js-test" }} }});
  engine.result.set(await response.json(), response.status, "json");
}};
"""
    outcome = run_on(start_runtime(sandbox_network="host"), source)
    assert outcome.status is RunStatus.COMPLETED, outcome.result
    assert json.loads(outcome.result) == {"path": "/hi?x=1", "agent": "js-test"}


def test_the_server_environment_is_not_visible(monkeypatch, start_runtime, run_on):
    monkeypatch.setenv("CODEACTIONS_JS_CANARY", CANARY)
    monkeypatch.setenv("FLOWS_CODE_ACTIONS_DB_URI", f"postgres://user:{CANARY}@db/x")
    runtime = start_runtime(node_warm_processes=0)  # its zygote starts with the canary set
    source = """
const fs = require("fs");
exports.Run = (engine) => engine.result.set({
  env: process.env, raw: fs.readFileSync("/proc/self/environ", "latin1"), argv: process.execArgv,
});
"""
    outcome = run_on(runtime, source)
    seen = json.loads(outcome.result)
    assert set(seen["env"]) == {"PATH", "LANG", "HOME", "TMPDIR"}
    assert CANARY not in outcome.result
    assert any(flag.startswith("--max-old-space-size=") for flag in seen["argv"])


def test_the_servers_working_directory_shows_nothing(run):
    here = os.getcwd()
    exposed = os.path.dirname(HARNESS)  # the harness itself must stay readable
    inside = exposed.startswith(here + os.sep)
    allowed = {os.path.relpath(exposed, here).split(os.sep)[0]} if inside else set()
    files = sorted(name for name in os.listdir(here) if os.path.isfile(os.path.join(here, name)))
    assert files, "the test needs a file to look for"
    source = f"""
const fs = require("fs");
exports.Run = (engine) => {{
  let read;
  try {{ read = fs.readFileSync({json.dumps(os.path.join(here, files[0]))}, "utf8").length; }}
  catch (error) {{ read = error.code; }}
  let listed;
  try {{ listed = fs.readdirSync({json.dumps(here)}); }} catch (error) {{ listed = []; }}
  engine.result.set({{ listed, read, cwd: process.cwd() }});
}};
"""
    seen = json.loads(run(source).result)
    assert set(seen["listed"]) <= allowed
    assert seen["read"] == "ENOENT"
    assert seen["cwd"] != here


def test_runs_do_not_share_their_scratch_directory(run):
    write = (
        'require("fs").writeFileSync("note.txt", "left");\n'
        'exports.Run = (e) => e.result.set("written");'
    )
    read = 'exports.Run = (e) => e.result.set(String(require("fs").existsSync("note.txt")));'
    assert run(write).result == "written"
    assert run(read).result == "false"
