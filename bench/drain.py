"""SIGTERM with runs in flight: how fast new connections are refused, how long the drain takes,
and how many runs are left unfinished — today's `serve` against the gthread server before
issue 13, in one run.

    .venv/bin/python bench/drain.py

Scenarios, each on a fresh server (1 worker): a 3 s run in flight with the drain long enough
(it should finish: completed), and a 45 s run in flight with GRACEFUL_TIMEOUT=2 (the new
server fails it "server shutting down"; the old one, whose drain was a fixed 30 s, cut it).
"""

from __future__ import annotations

import json
import signal
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import save
from bench.slow_clients import start_legacy
from codeactions_core.plugins import get_plugin_manager
from codeactions_core.settings import Settings
from codeactions_core.testing.server import CodeClient, RunningServer, start_server
from codeactions_core.wiring import open_store

SLEEPY = (
    'import time\n\ndef Run(engine):\n    time.sleep({seconds})\n    engine.result.set("slept")\n'
)


def started_run(server: RunningServer, code: str) -> None:
    while True:
        try:
            with urllib.request.urlopen(server.url(f"/coderun?code_id={code}"), timeout=5) as a:
                if any(run["status"] == "started" for run in json.loads(a.read())):
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.02)


def new_connection_fate(port: int, deadline: float = 40) -> tuple[str, float]:
    """What happens to new connections after SIGTERM: 'refused' (and after how long), or
    'accepted but not answered' when one hangs for 2 s."""
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.settimeout(2)
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                try:
                    if not sock.recv(100):
                        continue
                except TimeoutError:
                    return "accepted but not answered", round(time.monotonic() - started, 3)
        except ConnectionRefusedError:
            return "refused", round(time.monotonic() - started, 3)
        except OSError:
            pass
        time.sleep(0.01)
    return "still answered", deadline


def scenario(variant: str, run_seconds: int, graceful: str, work: Path) -> dict:
    data = work / "data"
    settings = {
        "FLOWS_CODE_ACTIONS_DATA_DIR": str(data),
        "FLOWS_CODE_ACTIONS_GRACEFUL_TIMEOUT": graceful,
        "FLOWS_CODE_ACTIONS_WEB_WORKERS": "1",
        "FLOWS_CODE_ACTIONS_LOG_LEVEL": "warning",
    }
    server = (
        start_legacy(settings, work)
        if variant == "gthread"
        else start_server(settings, work, workers=1)
    )
    client = CodeClient(server, timeout=120)
    code = client.create(SLEEPY.format(seconds=run_seconds), timeout=60)
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(client.call, code)
        started_run(server, code)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        fate, after = new_connection_fate(server.port)
        server.process.wait(400)
        drained = time.monotonic() - signalled
        try:
            result = answer.result()
            client_got = [result.status_code, result.text[:60]]
        except OSError as exc:
            client_got = [type(exc).__name__, str(exc)[:60]]
    settings_obj = Settings(data_dir=str(data))
    store = open_store(settings_obj, get_plugin_manager(settings_obj))
    try:
        runs = store.runs.list_by_code(code)
    finally:
        store.close()
    return {
        "new_connections": fate,
        "seconds_until_that": after,
        "seconds_sigterm_to_exit": round(drained, 2),
        "client_got": client_got,
        "runs": [[run.status.value, run.result[:40]] for run in runs],
        "runs_left_unfinished": sum(run.status.value in ("queued", "started") for run in runs),
    }


def main() -> None:
    results = {}
    for variant in ("gthread", "asgi"):
        for name, seconds, graceful in (("3s_run", 3, "60"), ("45s_run_short_drain", 45, "2")):
            with tempfile.TemporaryDirectory() as tmp:
                results[f"{variant}/{name}"] = scenario(variant, seconds, graceful, Path(tmp))
            print(f"{variant}/{name}", json.dumps(results[f"{variant}/{name}"]), flush=True)
    print("saved", save("drain", results))


if __name__ == "__main__":
    main()
