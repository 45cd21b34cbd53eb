"""Drop-in for real deployments: requests in the exact forms the old clients send, through a
real `codeactions serve` (issue 12: flow codes on the endpoint routes, raw bodies with a JSON
content type, the Postman PATCH, overload answering 503 at once, what user code sees, the old
HTTP metric series, the old service's HOST forms and ignored variables)."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from codeactions_core.plugins import load_settings
from codeactions_core.settings import Settings
from codeactions_core.testing.server import start_server

pytestmark = pytest.mark.e2e

PROJECT = "P-dropin"
POLL = 0.05


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The default settings, except one run at a time and no queue (to fill them cheaply)."""
    folder = tmp_path_factory.mktemp("dropin")
    running = start_server(
        {
            "FLOWS_CODE_ACTIONS_DATA_DIR": str(folder / "data"),
            "FLOWS_CODE_ACTIONS_WORKER_POOL_SIZE": "1",
            "FLOWS_CODE_ACTIONS_WORKER_POOL_QUEUE_SIZE": "0",
            "FLOWS_CODE_ACTIONS_OLD_UNUSED_THING": "1",  # an old variable nothing reads
            "FLOWS_CODE_ACTIONS_MEMORY_RESERVATION": "1024",
        },
        folder,
    )
    yield running
    running.stop()


def interpreter_312() -> str | None:
    """A real Python 3.12 executable on this machine (not a pyenv shim), if any."""
    candidates = [
        "/usr/local/bin/python3.12",
        "/usr/bin/python3.12",
        *map(str, sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))),
        shutil.which("python3.12"),
    ]
    for path in (p for p in candidates if p and Path(p).is_file()):
        answer = subprocess.run(
            [path, "-c", "import sys; print(sys.executable)"],
            capture_output=True,
            text=True,
            check=False,
        )
        if answer.returncode == 0 and answer.stdout.strip():
            return answer.stdout.strip()
    return None


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory):
    """ENDPOINT_CODE_TYPES=endpoint, HOST=":" (the old form of all interfaces), and user code
    on Python 3.12 when the machine has one."""
    folder = tmp_path_factory.mktemp("dropin-strict")
    settings = {
        "FLOWS_CODE_ACTIONS_DATA_DIR": str(folder / "data"),
        "FLOWS_CODE_ACTIONS_ENDPOINT_CODE_TYPES": "endpoint",
        "FLOWS_CODE_ACTIONS_HOST": ":",
    }
    python312 = interpreter_312()
    if python312:
        settings["FLOWS_CODE_ACTIONS_PYTHON_BINARY"] = python312
    running = start_server(settings, folder)
    running.python312 = python312
    yield running
    running.stop()


def create(
    base,
    source: str,
    *,
    language: str = "python",
    kind: str = "endpoint",
    content_type: str = "text/plain",
) -> dict:
    """POST /code as the old clients do: metadata in the query, the source as the body."""
    answer = requests.post(
        f"{base.base_url}/code",
        params={"name": "n", "language": language, "type": kind, "project_uuid": PROJECT},
        data=source.encode(),
        headers={"Content-Type": content_type},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


# Item 4: request forms ------------------------------------------------------------------------


def test_raw_source_with_a_json_content_type_is_stored_as_source(server):
    source = 'def Run(engine):\n    engine.result.set({"a": 1}, content_type="json")\n'
    code = create(server, source, content_type="application/json")
    assert code["source"] == source
    ran = requests.get(server.url(f"/action/endpoint/{code['id']}"), timeout=60)
    assert (ran.status_code, ran.json()) == (200, {"a": 1})
    # JSON that is not an object holding "source" is source too (the old service stored any body)
    listed = create(server, "[1, 2]", content_type="application/json")
    assert listed["source"] == "[1, 2]"
    updated = requests.patch(
        server.url(f"/code/{code['id']}"),
        data=b"print('two')",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert (updated.status_code, updated.json()["source"]) == (200, "print('two')")


def test_the_postman_patch_keeps_type_and_language(server):
    """Postman's template PATCHes with a fixed type=endpoint&language=python on every update."""
    code = create(
        server,
        "exports.Run = (engine) => engine.result.set('old');",
        language="javascript",
        kind="flow",
    )
    new_source = "exports.Run = (engine) => engine.result.set('new');"
    answer = requests.patch(
        server.url(f"/code/{code['id']}?type=endpoint&language=python&name=renamed"),
        data=new_source.encode(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    stored = requests.get(server.url(f"/code/{code['id']}"), timeout=30).json()
    assert (stored["language"], stored["type"], stored["name"], stored["source"]) == (
        "javascript",
        "flow",
        "renamed",
        new_source,
    )
    refused = requests.patch(
        server.url(f"/code/{code['id']}?language=cobol"), data=b"x", timeout=30
    )
    assert refused.status_code == 400 and "cobol" in refused.json()["message"]
    as_json = requests.patch(
        server.url(f"/code/{code['id']}"),
        timeout=30,
        json={"type": "endpoint", "source": "print(1)", "language": "python"},
    )
    assert (as_json.json()["type"], as_json.json()["language"]) == ("endpoint", "python")


# Item 2: flow codes on the endpoint routes ------------------------------------------------------


def test_flow_codes_run_on_the_endpoint_routes(server, strict_server):
    source = 'def Run(engine):\n    engine.result.set("flowed")\n'
    code = create(server, source, kind="flow")
    for path in (f"/endpoint/{code['id']}", f"/action/endpoint/{code['id']}"):
        answer = requests.post(server.url(path), timeout=60)
        assert (answer.status_code, answer.text) == (200, "flowed")
    strict = create(strict_server, source, kind="flow")
    for path in (f"/endpoint/{strict['id']}", f"/action/endpoint/{strict['id']}"):
        assert requests.post(strict_server.url(path), timeout=60).status_code == 404


# Item 6: what user code sees --------------------------------------------------------------------


@pytest.mark.parametrize("call", ["sys.exit()", "sys.exit(0)"])
def test_sys_exit_inside_run_ends_the_run_normally(server, call):
    code = create(
        server,
        f'import sys\ndef Run(engine):\n    engine.result.set("so far", status_code=201)\n'
        f'    {call}\n    engine.result.set("never")\n',
    )
    answer = requests.get(server.url(f"/action/endpoint/{code['id']}"), timeout=60)
    assert (answer.status_code, answer.text) == (201, "so far")
    failing = create(server, "import sys\ndef Run(engine):\n    sys.exit(3)\n")
    assert (
        requests.get(server.url(f"/action/endpoint/{failing['id']}"), timeout=60).status_code == 500
    )


def test_host_is_not_among_the_headers(server):
    code = create(
        server,
        (
            "def Run(engine):\n"
            '    engine.result.set(sorted(engine.header.keys()), content_type="json")\n'
        ),
    )
    answer = requests.get(
        server.url(f"/action/endpoint/{code['id']}"), headers={"X-Kept": "1"}, timeout=60
    )
    assert "X-Kept" in answer.json() and "Host" not in answer.json()
    (run,) = requests.get(server.url("/coderun"), params={"code_id": code["id"]}, timeout=30).json()
    assert "Host" not in run["headers"] and run["headers"]["X-Kept"] == ["1"]


def test_a_python_error_names_only_user_code(server):
    code = create(server, 'import json\n\ndef Run(engine):\n    json.loads("{")\n')
    answer = requests.get(server.url(f"/action/endpoint/{code['id']}"), timeout=60)
    message = answer.json()["message"]
    assert answer.status_code == 500
    assert 'File "action.py", line 4, in Run' in message and "JSONDecodeError" in message
    assert re.findall(r'File "([^"]+)"', message) == ["action.py"]
    assert "/" not in message.replace("action.py", "")


def test_a_missing_module_names_it_and_the_command(server):
    code = create(server, "import yaml\n\ndef Run(engine):\n    engine.result.set(yaml.dump({}))\n")
    answer = requests.get(server.url(f"/action/endpoint/{code['id']}"), timeout=60)
    assert answer.status_code == 500
    message = answer.json()["message"]
    assert "No module named 'yaml'" in message and "codeactions libs install yaml" in message


def test_user_code_runs_on_the_configured_interpreter(strict_server):
    if not strict_server.python312:
        pytest.skip("no Python 3.12 on this machine")
    source = (
        'import sys\n\ndef Run(engine):\n    who = "py"\n'
        '    engine.result.set(f"{"nested " + who} {sys.version_info[0]}.{sys.version_info[1]}")\n'
    )
    code = create(strict_server, source)
    answer = requests.get(strict_server.url(f"/action/endpoint/{code['id']}"), timeout=60)
    assert (answer.status_code, answer.text) == (200, "nested py 3.12"), answer.text


# Item 3: the old HOST forms and ignored variables -------------------------------------------------


def test_host_colon_listens_on_all_interfaces(strict_server):
    assert re.search(r"Listening at: http://0\.0\.0\.0:\d+", strict_server.log())
    assert requests.get(strict_server.url("/healthz"), timeout=10).status_code == 200


def test_unused_old_variables_are_named_once_at_start(server):
    lines = [line for line in server.log().splitlines() if "ignored variables" in line]
    assert len(lines) == 1
    assert "FLOWS_CODE_ACTIONS_OLD_UNUSED_THING" in lines[0]
    assert "FLOWS_CODE_ACTIONS_MEMORY_RESERVATION" in lines[0]
    assert "FLOWS_CODE_ACTIONS_WORKER_POOL_SIZE" not in lines[0]


# Item 8: the old HTTP series ----------------------------------------------------------------------


def test_metrics_serve_the_old_http_series_by_route_template(server):
    code = create(server, 'def Run(engine):\n    engine.result.set("m")\n')
    assert requests.post(server.url(f"/action/endpoint/{code['id']}"), data=b"12345", timeout=60).ok
    text = requests.get(server.url("/metrics"), timeout=30).text
    for name in (
        "codeactions_requests_total",
        "codeactions_request_duration_seconds_bucket",
        "codeactions_request_size_bytes_bucket",
        "codeactions_response_size_bytes_sum",
    ):
        assert name in text, name
    series = re.findall(r"^codeactions_requests_total\{(.*)\} \S+$", text, re.MULTILINE)
    labels = [dict(re.findall(r'(\w+)="([^"]*)"', line)) for line in series]
    assert {
        "code": "200",
        "method": "POST",
        "host": f"127.0.0.1:{server.port}",
        "url": "/action/endpoint/{code_id}",
    } in labels
    assert all(code["id"] not in entry["url"] for entry in labels)


# Item 5: overload answers at once (last: it occupies the only run slot) ---------------------------


def test_a_run_past_a_full_pool_and_queue_answers_503_at_once(server):
    code = create(
        server,
        'import time\n\ndef Run(engine):\n    time.sleep(4)\n    engine.result.set("slow")\n',
    )
    slow: dict[str, requests.Response] = {}
    thread = threading.Thread(
        target=lambda: slow.update(
            answer=requests.get(server.url(f"/action/endpoint/{code['id']}"), timeout=60)
        ),
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the slow run holds the only slot
        runs = requests.get(
            server.url("/coderun"), params={"code_id": code["id"]}, timeout=10
        ).json()
        if runs and runs[0]["status"] == "started":
            break
        time.sleep(POLL)
    else:
        pytest.fail("the slow run never started")
    refused = requests.get(server.url(f"/action/endpoint/{code['id']}"), timeout=60)
    assert refused.status_code == 503 and "busy" in refused.json()["message"]
    assert "answer" not in slow, (
        "the refusal waited for the slot to free instead of answering at once"
    )
    thread.join(60)
    assert slow["answer"].status_code == 200


# Settings that need no server ---------------------------------------------------------------------


def test_store_follows_the_db_uri_scheme_when_db_type_is_unset():
    cases = {
        "postgres://u@h:5432/d": "postgres",
        "postgresql://u@h/d": "postgres",
        "mongodb://h:27017": "mongodb",
        "sqlite:///tmp/x.db": "sqlite",
    }
    for uri, kind in cases.items():
        assert load_settings({"FLOWS_CODE_ACTIONS_DB_URI": uri}).db_type == kind
    assert load_settings({}).db_type == "sqlite"
    explicit = load_settings(
        {"FLOWS_CODE_ACTIONS_DB_TYPE": "sqlite", "FLOWS_CODE_ACTIONS_DB_URI": "sqlite:///tmp/y.db"}
    )
    assert explicit.db_type == "sqlite"


def test_the_old_host_forms_mean_all_interfaces():
    for raw in (":", ""):
        assert Settings.from_env({"FLOWS_CODE_ACTIONS_HOST": raw}).host == "0.0.0.0"
    with_port = Settings.from_env({"FLOWS_CODE_ACTIONS_HOST": ":9001"})
    assert (with_port.host, with_port.port) == ("0.0.0.0", 9001)
    both = Settings.from_env(
        {"FLOWS_CODE_ACTIONS_HOST": ":9001", "FLOWS_CODE_ACTIONS_PORT": "9002"}
    )
    assert (both.host, both.port) == ("0.0.0.0", 9002)


def test_request_threads_leave_room_for_the_503():
    settings = Settings(worker_pool_size=1, worker_pool_queue_size=0)
    assert settings.request_threads > settings.worker_pool_size + settings.worker_pool_queue_size
