"""Hostile user code against a real ``codeactions serve``: it must not harm the server
or other runs. After every case the server answers /healthz promptly and runs normal code."""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from codeactions_core.testing.server import start_server

pytestmark = pytest.mark.e2e

CANARY = f"canary-{uuid.uuid4().hex}"
TOKEN = f"token-{uuid.uuid4().hex}"
NORMAL = 'def Run(engine):\n    engine.result.set("still fine")\n'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    server = start_server(
        {
            "FLOWS_CODE_ACTIONS_DATA_DIR": str(data),
            "FLOWS_CODE_ACTIONS_WORKER_POOL_SIZE": "4",
            "FLOWS_CODE_ACTIONS_AUTH_TOKEN": TOKEN,
        },
        tmp_path_factory.mktemp("logs"),
        extra_env={"HOSTILE_TEST_CANARY": CANARY},
    )
    server.data_dir = data
    yield server
    server.stop()


class Client:
    def __init__(self, server) -> None:
        self.server = server

    def create(self, source: str, timeout: int = 5, language: str = "python") -> str:
        answer = requests.post(
            self.server.url("/code"),
            params={
                "name": "hostile",
                "language": language,
                "type": "endpoint",
                "project_uuid": "P",
                "timeout": timeout,
            },
            data=source.encode(),
            headers={"Authorization": f"Token {TOKEN}"},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    def call(self, code_id: str, **params: str) -> requests.Response:
        return requests.get(
            self.server.url(f"/action/endpoint/{code_id}"), params=params, timeout=120
        )

    def run(
        self, source: str, timeout: int = 5, language: str = "python", **params: str
    ) -> requests.Response:
        return self.call(self.create(source, timeout, language), **params)


@pytest.fixture(scope="module")
def client(server) -> Client:
    return Client(server)


@pytest.fixture(autouse=True)
def server_survives(server, client):
    yield
    assert server.process.poll() is None, "the server died"
    started = time.monotonic()
    assert requests.get(server.url("/healthz"), timeout=2).json() == {"status": "ok"}
    assert time.monotonic() - started < 1.0, "the server did not answer promptly"
    answer = client.run(NORMAL)
    assert (answer.status_code, answer.text) == (200, "still fine")


def test_infinite_loop_is_killed_at_its_timeout(client):
    started = time.monotonic()
    answer = client.run("def Run(engine):\n    while True:\n        pass\n", timeout=5)
    assert answer.status_code == 408 and "timeout" in answer.json()["message"]
    assert 4.9 < time.monotonic() - started < 9


def test_fork_bomb_harms_neither_the_server_nor_a_concurrent_run(client):
    bomb = client.create(
        "import os\ndef Run(engine):\n    while True:\n        try:\n            os.fork()\n"
        "        except OSError:\n            pass\n",
        timeout=5,
    )
    normal = client.create(NORMAL)
    with ThreadPoolExecutor(2) as pool:
        exploding = pool.submit(client.call, bomb)
        time.sleep(
            0.5
        )  # let the bomb get going before the concurrent run (load, not synchronisation)
        concurrent = pool.submit(client.call, normal).result()
        answer = exploding.result()
    assert (concurrent.status_code, concurrent.text) == (200, "still fine")
    assert answer.status_code in (408, 500)


def test_allocating_far_beyond_the_memory_limit_fails_the_run(client):
    at_once = client.run("def Run(engine):\n    data = bytearray(8 * 1024 ** 3)\n")
    assert at_once.status_code == 500 and "MemoryError" in at_once.json()["message"]
    gradual = client.run(
        "def Run(engine):\n    hog = []\n    while True:\n"
        "        hog.append(bytearray(64 * 1024 * 1024))\n"
    )
    assert gradual.status_code == 500


def test_writing_a_huge_file_is_stopped(client, server):
    answer = client.run(
        'def Run(engine):\n    with open("/tmp/huge", "wb") as handle:\n        while True:\n'
        '            handle.write(b"x" * (1 << 20))\n'
    )
    assert answer.status_code == 500
    message = answer.json()["message"]  # Python turns RLIMIT_FSIZE into EFBIG, not a signal
    assert any(
        reason in message for reason in ("File too large", "larger than allowed", "No space")
    )


def test_printing_gigabytes_is_cut(client):
    answer = client.run(
        'import sys\ndef Run(engine):\n    chunk = "x" * 65536\n    while True:\n'
        "        sys.stdout.write(chunk)\n"
    )
    assert answer.status_code in (408, 500)
    assert len(answer.content) < 64 * 1024


def test_the_server_environment_is_invisible(client, server):
    answer = client.run(
        "import os\ndef Run(engine):\n"
        "    seen = dict(os.environ)\n"
        "    for pid in (engine.params.get('server_pid'), 'self'):\n"
        "        try:\n            seen['proc_' + pid] = open(f'/proc/{pid}/environ').read()\n"
        "        except OSError as error:\n            seen['proc_' + pid] = type(error).__name__\n"
        "    engine.result.set(seen, content_type='json')\n",
        server_pid=str(server.process.pid),
    )
    seen = answer.json()
    assert CANARY not in answer.text and TOKEN not in answer.text
    assert not any(name.startswith(("FLOWS_", "CODEACTIONS_")) for name in seen)
    assert seen[f"proc_{server.process.pid}"] in ("FileNotFoundError", "PermissionError")


def test_the_server_working_and_data_directories_are_invisible(client, server):
    database = Path(server.data_dir) / "codeactions.db"
    assert database.exists()
    answer = client.run(
        "import os, sqlite3\ndef Run(engine):\n    seen = {}\n"
        "    for name in ('cwd', 'data'):\n"
        "        try:\n            seen[name] = os.listdir(engine.params.get(name))\n"
        "        except OSError as error:\n            seen[name] = type(error).__name__\n"
        "    try:\n"
        "        db = sqlite3.connect('file:' + engine.params.get('db') + '?mode=ro', uri=True)\n"
        "        seen['db'] = db.execute('select count(*) from codes').fetchone()\n"
        "    except sqlite3.Error as error:\n        seen['db'] = str(error)\n"
        "    engine.result.set(seen, content_type='json')\n",
        cwd=os.getcwd(),
        data=str(server.data_dir),
        db=str(database),
    )
    seen = answer.json()
    assert seen["cwd"] in ([], "FileNotFoundError")
    # only the read-only Python libraries directory shows through (libs/python)
    assert seen["data"] in ([], ["libs"], "FileNotFoundError")
    assert seen["db"] == "unable to open database file"


def test_killing_the_parent_or_the_server_fails(client, server):
    answer = client.run(
        "import os, signal\ndef Run(engine):\n    outcomes = []\n"
        "    for pid in (os.getppid(), int(engine.params.get('server_pid')), -1):\n"
        "        try:\n            os.kill(pid, signal.SIGKILL)\n"
        "            outcomes.append('sent')\n"
        "        except OSError as error:\n            outcomes.append(type(error).__name__)\n"
        "    engine.result.set(outcomes)\n",
        server_pid=str(server.process.pid),
    )
    # Whatever it managed to signal lives inside its own PID namespace.
    assert answer.status_code in (200, 500)
    assert server.process.poll() is None


def test_background_children_are_gone_when_the_run_returns(client):
    # The root holds no `sleep` to start: children are forks, named by the marker
    # (their comm, which the host's /proc shows).
    marker = f"m{time.time_ns() % 10**9}"
    answer = client.run(
        "import ctypes, os, time\ndef Run(engine):\n"
        "    for detach in (False, True):\n"
        "        if os.fork() == 0:\n"
        "            if detach:\n"
        "                os.setsid()\n"
        f"            ctypes.CDLL(None).prctl(15, b'{marker}', 0, 0, 0)\n"
        "            time.sleep(600)\n"
        "            os._exit(0)\n"
        "    engine.result.set('returned')\n"
    )
    assert answer.text == "returned"
    deadline = time.monotonic() + 5
    while sleeping_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling for the kernel to finish tearing the namespace down
    assert sleeping_with(marker) == []


def sleeping_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "comm").read_text(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_a_run_cannot_stop_the_server_with_signals_to_everyone(client, server):
    answer = client.run(
        "import os, signal\ndef Run(engine):\n    os.kill(-1, signal.SIGTERM)\n"
        "    engine.result.set('sent')\n"
    )
    assert answer.status_code in (200, 500)
    assert server.process.poll() is None


SLEEPERS = {
    "javascript": (
        "exports.Run = async (engine) => {\n"
        "  await new Promise((done) => setTimeout(done, 60000));\n};\n"
    ),
    "go": (
        'package main\n\nimport "time"\n\n'
        "func Run(engine *Engine) {\n\ttime.Sleep(60 * time.Second)\n}\n"
    ),
}


@pytest.mark.parametrize("language", sorted(SLEEPERS))
def test_sleeping_past_the_timeout_in_other_languages(client, server, language):
    runtimes = requests.get(server.url("/health"), timeout=10).json()["runtimes"]
    if not runtimes.get(language, {}).get("ready"):
        pytest.skip(f"the {language} runtime is not available here: {runtimes.get(language)}")
    code_id = client.create(SLEEPERS[language], timeout=5, language=language)
    client.call(code_id)  # a Go code compiles on its first run; time the second
    started = time.monotonic()
    answer = client.call(code_id)
    assert answer.status_code == 408 and "timeout" in answer.json()["message"]
    assert 4.9 < time.monotonic() - started < 9
