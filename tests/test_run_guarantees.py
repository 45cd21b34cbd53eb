"""What every run guarantees, on a real server with several workers: one terminal
CodeRun whatever happens, and updates seen by the very next run in every worker."""

from __future__ import annotations

import time

import pytest
import requests

from codeactions_core.testing.server import start_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(
        {"FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path_factory.mktemp("data"))},
        tmp_path_factory.mktemp("logs"),
        workers=3,
    )
    yield server
    server.stop()


def create(server, source: str, timeout: int = 10) -> str:
    answer = requests.post(
        server.url("/code"),
        params={
            "name": "g",
            "language": "python",
            "type": "endpoint",
            "project_uuid": "P",
            "timeout": timeout,
        },
        data=source.encode(),
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def runs_when_settled(server, code_id: str, count: int, deadline: float = 20) -> list[dict]:
    """The code's runs once ``count`` of them are terminal (polling with a deadline)."""
    give_up = time.monotonic() + deadline
    while True:
        runs = requests.get(server.url("/coderun"), params={"code_id": code_id}, timeout=10).json()
        if (
            sum(run["status"] in ("completed", "failed") for run in runs) >= count
            or time.monotonic() > give_up
        ):
            return runs
        time.sleep(0.05)  # polling the store, not synchronisation


def test_an_update_reaches_the_next_run_in_every_worker(server):
    code_id = create(server, 'def Run(engine):\n    import os\n    engine.result.set("v1")\n')
    session = requests.Session()
    assert {
        session.get(server.url(f"/action/endpoint/{code_id}"), timeout=30).text for _ in range(12)
    } == {"v1"}
    patched = requests.patch(
        server.url(f"/code/{code_id}"),
        data=b'def Run(engine):\n    engine.result.set("v2")\n',
        timeout=30,
    )
    assert patched.status_code == 200
    # Fresh connections are spread over the workers; every one must see v2 at once.
    answers = {
        requests.get(server.url(f"/action/endpoint/{code_id}"), timeout=30).text for _ in range(24)
    }
    assert answers == {"v2"}


def test_a_client_that_disconnects_still_leaves_a_completed_run(server):
    code_id = create(
        server,
        'import time\ndef Run(engine):\n    time.sleep(1.5)\n    engine.result.set("done")\n',
    )
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(server.url(f"/action/endpoint/{code_id}"), timeout=0.3)
    runs = runs_when_settled(server, code_id, 1)
    assert [(run["status"], run["result"]) for run in runs] == [("completed", "done")]


def test_a_crashing_sandbox_leaves_one_failed_run(server):
    # As PID 1 of its namespace it ignores its own signals: crash it the hard way.
    code_id = create(server, "import ctypes\ndef Run(engine):\n    ctypes.string_at(0)\n")
    answer = requests.get(server.url(f"/action/endpoint/{code_id}"), timeout=30)
    assert answer.status_code == 500 and "segmentation fault" in answer.json()["message"]
    runs = runs_when_settled(server, code_id, 1)
    assert len(runs) == 1 and runs[0]["status"] == "failed"


def test_a_timeout_leaves_one_failed_run(server):
    code_id = create(server, "def Run(engine):\n    while True:\n        pass\n", timeout=5)
    assert requests.get(server.url(f"/action/endpoint/{code_id}"), timeout=30).status_code == 408
    runs = runs_when_settled(server, code_id, 1)
    assert [(run["status"], run["extra"].get("timed_out")) for run in runs] == [("failed", True)]
