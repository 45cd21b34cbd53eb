"""Slow clients against `codeactions serve`: the old gthread workers against the asyncio front.

For each server variant, in one run: run throughput (no slow clients), then with N slow
clients open (each sends a request's headers one byte a second and reconnects when dropped),
the latency of `/healthz` and of a normal run, and how many of them did not answer within 5 s.

    .venv/bin/python bench/slow_clients.py [--seconds 10] [--slow 200,500]

Variants: `gthread` (today's `serve` before issue 13: gunicorn gthread, a thread per
connection while its headers arrive) and `asgi` (gunicorn + uvicorn worker, the Falcon app in a
thread pool behind it, header/body deadlines). gevent is not measured: it monkeypatches
threads, sockets and subprocess, which the sandbox (fork/zygote, fd passing, threads) relies on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Self

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cpu_per_run import command, cpu_seconds
from bench.harness import descendants, save
from codeactions_core.testing.server import RunningServer, start_server

LEGACY = Path(__file__).resolve().parent / "legacy_serve.py"
ANSWER_DEADLINE = 5.0
HELLO = 'def Run(engine):\n    engine.result.set("hello")\n'


class SlowClients:
    """``count`` connections sending a request head one byte a second, reconnecting when the
    server drops them, on an event loop in a thread of their own."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count = port, count
        self.open = 0
        self.dropped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 30
        while self.open < self.count and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)  # let the first bytes of every head arrive
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    async def _main(self) -> None:
        await asyncio.gather(*(self._one() for _ in range(self.count)))

    async def _one(self) -> None:
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000
        while not self._stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.5)
                continue
            self.open += 1
            try:
                for byte in head:
                    if self._stop.is_set():
                        break
                    writer.write(bytes([byte]))
                    await writer.drain()
                    if reader.at_eof():
                        break
                    await asyncio.sleep(1)
            except OSError:
                pass
            finally:
                self.open -= 1
                self.dropped += 1
                writer.close()


def timed_get(url: str) -> float | None:
    """Seconds until ``url`` answered 200, or None when it did not within ANSWER_DEADLINE."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=ANSWER_DEADLINE) as answer:
            answer.read()
            ok = answer.status == 200
    except (urllib.error.URLError, OSError):
        return None
    return time.monotonic() - started if ok else None


def probe(url: str, samples: int) -> dict:
    times = [timed_get(url) for _ in range(samples)]
    answered = [t for t in times if t is not None]
    return {
        "samples": samples,
        "unanswered": samples - len(answered),
        "median_s": round(statistics.median(answered), 3) if answered else None,
        "max_s": round(max(answered), 3) if answered else None,
    }


def throughput(server: RunningServer, url: str, seconds: float, concurrency: int = 8) -> dict:
    """Runs answered 200 per second over ``concurrency`` keep-alive clients, and the CPU the
    server's own processes (master and workers, not the sandboxes) spent per run."""
    before = server_cpu(server.process.pid)
    started = time.monotonic()
    stop = started + seconds

    def worker(_: int) -> int:
        session, done = requests.Session(), 0
        while time.monotonic() < stop:
            if session.get(url, timeout=60).status_code == 200:
                done += 1
        return done

    with ThreadPoolExecutor(concurrency) as pool:
        runs = sum(pool.map(worker, range(concurrency)))
    cpu = server_cpu(server.process.pid) - before
    return {
        "runs_per_second": round(runs / (time.monotonic() - started), 1),
        "server_cpu_ms_per_run": round(1000 * cpu / max(runs, 1), 3),
    }


def server_cpu(master: int) -> float:
    """CPU seconds of the server's master and workers (the sandboxes' zygotes excluded)."""
    return sum(
        cpu_seconds(pid, with_children=False)
        for pid in descendants(master)
        if "zygote.py" not in command(pid)
        and ("codeactions_core.cli" in command(pid) or "legacy_serve.py" in command(pid))
    )


def create_code(server: RunningServer) -> str:
    answer = requests.post(
        server.url("/code"),
        data=HELLO,
        timeout=30,
        params={"name": "b", "language": "python", "type": "endpoint", "project_uuid": "P"},
    )
    answer.raise_for_status()
    return answer.json()["id"]


def measure(variant: str, slow_counts: list[int], seconds: float, work: Path) -> dict:
    data = work / variant
    data.mkdir(parents=True)
    settings = {
        "FLOWS_CODE_ACTIONS_DATA_DIR": str(data),
        "FLOWS_CODE_ACTIONS_LOG_LEVEL": "warning",
        "FLOWS_CODE_ACTIONS_CODE_LIMITER_MAX_REQUESTS": "100000000",
    }
    if variant == "gthread":
        server = start_legacy(settings, work)
    else:
        server = start_server(settings, work, workers=2)
    try:
        code = create_code(server)
        run_url = server.url(f"/action/endpoint/{code}")
        throughput(server, run_url, 2)  # warm up: threads, sandboxes, connections
        results = {"throughput": throughput(server, run_url, seconds)}
        for count in slow_counts:
            with SlowClients(server.port, count) as slow:
                results[f"slow_{count}"] = {
                    "healthz": probe(server.url("/healthz"), 10),
                    "run": probe(run_url, 10),
                    "slow_open": slow.open,
                }
        results["throughput_after"] = throughput(server, run_url, seconds)
        return results
    finally:
        server.stop()


def start_legacy(settings: dict, work: Path) -> RunningServer:
    """Today's server before issue 13: the same `serve`, with gunicorn's gthread workers."""
    import subprocess

    from codeactions_core.testing.server import child_env, free_port

    port = free_port()
    env = child_env(
        {
            "FLOWS_CODE_ACTIONS_HOST": "127.0.0.1",
            "FLOWS_CODE_ACTIONS_PORT": str(port),
            "FLOWS_CODE_ACTIONS_WEB_WORKERS": "2",
            **settings,
        }
    )
    log_path = work / f"legacy-{port}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(LEGACY)], env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    server = RunningServer(process, port, log_path)
    deadline = time.monotonic() + 30
    while timed_get(server.url("/healthz")) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(server.log())
        time.sleep(0.1)
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--slow", default="200,500")
    parser.add_argument("--variants", default="gthread,asgi")
    args = parser.parse_args()
    slow_counts = [int(n) for n in args.slow.split(",") if n.strip()]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_, variant in enumerate(args.variants.split(",")):
            name = variant if variant not in results else f"{variant}#{round_}"
            results[name] = measure(variant, slow_counts, args.seconds, Path(tmp) / str(round_))
            print(name, json.dumps(results[name]), flush=True)
    print("saved", save("slow_clients", results))


if __name__ == "__main__":
    main()
