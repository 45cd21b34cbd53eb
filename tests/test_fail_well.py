"""Issue 13 against a real `codeactions serve`: slow clients do not starve it, SIGTERM drains it
(runs finish or are recorded failed, never left started; new connections are refused), and
its connection cap refuses at once. Deadlines below are generous bounds, not timings."""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest

from codeactions_core.model import RunStatus
from codeactions_core.plugins import get_plugin_manager
from codeactions_core.settings import Settings
from codeactions_core.testing.server import CodeClient, RunningServer, start_server
from codeactions_core.wiring import open_store
from tests.support.processes import MountRefused, small_tmpfs

pytestmark = [pytest.mark.e2e, pytest.mark.heavy]

SLOW_CLIENTS = 300
SLEEPY = (
    'import time\n\ndef Run(engine):\n    time.sleep({seconds})\n    engine.result.set("slept")\n'
)


def slow_sockets(stack: ExitStack, port: int, count: int) -> list[socket.socket]:
    """``count`` connections that have sent part of a request head and then go quiet."""
    sockets = []
    for _ in range(count):
        sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaa")
        sockets.append(sock)
    return sockets


def get(server: RunningServer, path: str, timeout: float) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(server.url(path), timeout=timeout) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def settings_for(tmp_path, **extra: str) -> dict[str, str]:
    return {
        "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path / "data"),
        "FLOWS_CODE_ACTIONS_HEALTH_CHECK_CACHE_TIME": "0",
        **{f"FLOWS_CODE_ACTIONS_{name.upper()}": value for name, value in extra.items()},
    }


def runs_of(tmp_path, code_id: str) -> list:
    settings = Settings(data_dir=str(tmp_path / "data"))
    store = open_store(settings, get_plugin_manager(settings))
    try:
        return store.runs.list_by_code(code_id)
    finally:
        store.close()


def wait_for_started_run(server: RunningServer, code_id: str, deadline: float = 30) -> str:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        status, text = get(server, f"/coderun?code_id={code_id}", timeout=5)
        runs = json.loads(text) if status == 200 else []
        started = [run for run in runs if run["status"] == "started"]
        if started:
            return started[0]["id"]
        time.sleep(0.05)  # polling for the run to start
    raise AssertionError("the run did not start")


def refused_within(port: int, deadline: float) -> bool:
    """True once a new connection to ``port`` is refused (not accepted and left hanging)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
        except ConnectionRefusedError:
            return True
        except OSError:
            pass
        time.sleep(0.02)  # polling for the listener to close
    return False


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slow")
    # a header deadline far longer than the test: the slow clients stay connected throughout
    server = start_server(settings_for(tmp, header_timeout="120"), tmp, workers=1)
    yield server
    server.stop()


def test_hundreds_of_slow_clients_do_not_starve_the_api(slow_server):
    client = CodeClient(slow_server, timeout=30)
    code = client.create('def Run(engine):\n    engine.result.set("fine")\n')
    with ExitStack() as stack:
        slow_sockets(stack, slow_server.port, SLOW_CLIENTS)
        status, text = get(slow_server, "/healthz", timeout=30)
        assert (status, json.loads(text)) == (200, {"status": "ok"})
        with ThreadPoolExecutor(4) as pool:  # runs side by side, not only one at a time
            answers = list(pool.map(lambda _: client.call(code), range(8)))
        assert [(a.status_code, a.text) for a in answers] == [(200, "fine")] * 8
        assert get(slow_server, "/health/ready", timeout=30)[0] == 200


FINE = {
    "python": 'def Run(engine):\n    engine.result.set("fine")\n',
    "javascript": 'exports.Run = (engine) => engine.result.set("fine");\n',
    "go": (
        'package main\n\nfunc Run(engine *Engine) {\n\tengine.Result.Set("fine", 200, "text")\n}\n'
    ),
}


@pytest.mark.parametrize("language", sorted(FINE))
def test_every_language_runs_behind_the_asyncio_front(slow_server, language):
    """The sandbox (fork/zygote, fd passing, threads) works unchanged behind the new front."""
    client = CodeClient(slow_server, timeout=120)
    client.require_runtime(language)
    answer = client.run(FINE[language], language=language)
    assert (answer.status_code, answer.text) == (200, "fine")


def test_clients_too_slow_with_their_headers_or_body_are_cut_off(tmp_path):
    settings = settings_for(tmp_path, header_timeout="0.5", body_timeout="0.5")
    server = start_server(settings, tmp_path, workers=1)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            assert sock.recv(1024) == b"", "the server should have closed the connection"
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(b"POST /code HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
            answer = sock.makefile("rb").read()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 "), answer
        assert json.loads(body) == {"message": "request body not received within 0.5 s"}
    finally:
        server.stop()


def test_connections_beyond_the_cap_are_refused_at_once(tmp_path):
    server = start_server(settings_for(tmp_path, max_connections="20"), tmp_path, workers=1)
    try:
        with ExitStack() as stack:
            slow_sockets(stack, server.port, 25)
            status, text = get(server, "/healthz", timeout=30)
            assert status == 503, text
            assert "MAX_CONNECTIONS" in json.loads(text)["message"]
        deadline = time.monotonic() + 30
        while get(server, "/healthz", timeout=30)[0] != 200:  # the cap frees as they close
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        server.stop()


def test_sigterm_lets_a_run_under_graceful_timeout_finish(tmp_path):
    server = start_server(settings_for(tmp_path, graceful_timeout="60"), tmp_path, workers=1)
    try:
        client = CodeClient(server, timeout=60)
        code = client.create(SLEEPY.format(seconds=3), timeout=30)
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(client.call, code)
            wait_for_started_run(server, code)
            server.process.send_signal(signal.SIGTERM)
            assert refused_within(server.port, 10), "new connections must be refused while draining"
            assert (answer.result(60).status_code, answer.result().text) == (200, "slept")
        assert server.process.wait(60) == 0
    finally:
        server.stop()
    assert [run.status for run in runs_of(tmp_path, code)] == [RunStatus.COMPLETED]


def test_sigterm_fails_a_run_longer_than_graceful_timeout(tmp_path):
    server = start_server(settings_for(tmp_path, graceful_timeout="1"), tmp_path, workers=1)
    try:
        client = CodeClient(server, timeout=60)
        code = client.create(SLEEPY.format(seconds=45), timeout=60)
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(client.call, code)
            wait_for_started_run(server, code)
            server.process.send_signal(signal.SIGTERM)
            assert refused_within(server.port, 10), "new connections must be refused while draining"
            assert server.process.wait(60) == 0
            assert answer.result().status_code == 503
            assert json.loads(answer.result().text) == {"message": "server shutting down"}
    finally:
        server.stop()
    runs = runs_of(tmp_path, code)
    stored = [(run.status, run.result) for run in runs]
    assert stored == [(RunStatus.FAILED, "server shutting down")]


@pytest.fixture
def tiny_disk(tmp_path):
    """A 8 MiB tmpfs for a data directory, unmounted afterwards."""
    try:
        with small_tmpfs(tmp_path / "disk", 8) as mount:
            yield mount
    except MountRefused as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")


def test_a_full_disk_answers_503_and_logs_one_line_not_one_per_request(tmp_path, tiny_disk):
    settings = {
        "FLOWS_CODE_ACTIONS_DATA_DIR": str(tiny_disk),
        "FLOWS_CODE_ACTIONS_MIN_FREE_DISK_MB": "1",
        "FLOWS_CODE_ACTIONS_HEALTH_CHECK_CACHE_TIME": "0",
        "FLOWS_CODE_ACTIONS_LOG_THROTTLE_SECONDS": "600",
        # prometheus' memory-mapped files on a full tmpfs fault with SIGBUS: kept off it
        "FLOWS_CODE_ACTIONS_METRICS_DIR": str(tmp_path / "metrics"),
    }
    server = start_server(settings, tmp_path, workers=1)
    try:
        client = CodeClient(server, timeout=30)
        client.create('def Run(engine):\n    engine.result.set("fine")\n')
        with open(tiny_disk / "filler", "wb") as filler, pytest.raises(OSError):
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        source = 'def Run(engine):\n    engine.result.set("fine")\n' + "#" * 200_000
        answers = []
        for _ in range(20):
            try:
                client.create(source)
            except urllib.error.HTTPError as error:
                answers.append((error.code, json.loads(error.read())["message"][:14]))
        assert answers == [(503, "storage full: ")] * 20
        assert get(server, "/health/ready", timeout=30)[0] == 503
    finally:
        server.stop()
    assert server.log().count("storage full: ") == 1, server.log()[-3000:]
