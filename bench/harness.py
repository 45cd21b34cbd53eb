"""Shared pieces of the benchmarks: load generation with wrk, servers, memory."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

from codeactions_core.testing.server import child_env, free_port

ROOT = Path(__file__).resolve().parents[1]
GUNICORN_WORKERS, GUNICORN_THREADS = 2, 8  # the same for every server measured
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class Load:
    """What wrk measured: throughput and latency percentiles (milliseconds)."""

    requests_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int

    def as_dict(self) -> dict:
        return asdict(self)


def wrk(url: str, *, connections: int, seconds: float) -> Load:
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    threads = min(connections, 2)
    output = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "--latency",
            "--timeout",
            "30s",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    percentiles = {
        int(match[1]): float(match[2]) * UNITS[match[3]]
        for match in re.finditer(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    }
    throughput = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    return Load(throughput, percentiles[50], percentiles[90], percentiles[99], errors)


def wait_until_up(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status < 500:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def gunicorn(app: str, log_dir: Path) -> tuple[subprocess.Popen, str]:
    """A baseline app on the same gunicorn settings as ``codeactions serve``."""
    port = free_port()
    # the child holds its own copy of the log's descriptor: this one may close once it started
    with open(log_dir / f"gunicorn-{port}.log", "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-k",
                "gthread",
                "-w",
                str(GUNICORN_WORKERS),
                "--threads",
                str(GUNICORN_THREADS),
                "--keep-alive",
                "5",
                "-b",
                f"127.0.0.1:{port}",
                "--no-control-socket",
                "--chdir",
                str(ROOT),
                app,
            ],
            env=child_env({}),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process, f"http://127.0.0.1:{port}"


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, []))
    return found


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def server_memory(master: int) -> int:
    """Resident memory of the server: the master and its gunicorn workers (not the
    zygotes and sandboxes the workers start)."""
    workers = [pid for pid in descendants(master) if _parent(pid) == master]
    return sum(rss_bytes(pid) for pid in [master, *workers])


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


def _command(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def hammer(url: str, count: int, concurrency: int) -> int:
    """Send ``count`` requests over ``concurrency`` keep-alive connections; the failures."""
    per_worker = count // concurrency

    def worker(_: int) -> int:
        session, failures = requests.Session(), 0
        for _ in range(per_worker):
            if session.get(url, timeout=60).status_code != 200:
                failures += 1
        return failures

    with ThreadPoolExecutor(concurrency) as pool:
        return sum(pool.map(worker, range(concurrency)))


def save(name: str, results: dict) -> Path:
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(results, indent=2))
    return path
