"""Faults a load balancer and an operator see, against a real `codeactions serve` (defaults:
HEALTH_CHECK_CACHE_TIME=3, LOG_THROTTLE_SECONDS=10):

- the data directory fills up (a tmpfs the script mounts): how long creating a code takes to
  answer, with what, how long until /health/ready says 503, how many log lines 200 failing
  requests write;
- its own Redis is killed: how long until /health says degraded, and whether /health/ready
  and runs kept answering 200 meanwhile.

    .venv/bin/python bench/web_faults.py # as root (mount)
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import save
from codeactions_core.testing.server import CodeClient, RunningServer, start_server
from tests.support.redis_server import PrivateRedis

HELLO = 'def Run(engine):\n    engine.result.set("fine")\n'


def get(server: RunningServer, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(server.url(path), timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def until(condition, deadline: float = 60) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > deadline:
            return float("inf")
        time.sleep(0.02)
    return round(time.monotonic() - started, 3)


def full_disk(work: Path) -> dict:
    mount = work / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
    try:
        server = start_server(
            {
                "FLOWS_CODE_ACTIONS_DATA_DIR": str(mount),
                "FLOWS_CODE_ACTIONS_MIN_FREE_DISK_MB": "1",
                "FLOWS_CODE_ACTIONS_METRICS_DIR": str(work / "metrics"),
            },
            work,
            workers=1,
        )
        try:
            client = CodeClient(server, timeout=30)
            client.create(HELLO)
            with open(mount / "filler", "wb") as filler:
                try:
                    while True:
                        filler.write(b"\0" * 65536)
                        filler.flush()
                except OSError:
                    pass
            not_ready_after = until(lambda: get(server, "/health/ready")[0] == 503)
            times, statuses = [], []
            for _ in range(200):
                started = time.monotonic()
                try:
                    client.create(HELLO + "#" * 200_000)
                    statuses.append(201)
                except urllib.error.HTTPError as error:
                    statuses.append(error.code)
                times.append(time.monotonic() - started)
        finally:
            server.stop()
        return {
            "create_code_statuses": sorted(set(statuses)),
            "create_code_median_ms": round(1000 * statistics.median(times), 1),
            "seconds_until_ready_503": not_ready_after,
            "log_lines_for_200_failures": server.log().count("storage full: "),
        }
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def redis_killed(work: Path) -> dict:
    redis = PrivateRedis.start()
    server = start_server(
        {
            "FLOWS_CODE_ACTIONS_DATA_DIR": str(work / "data"),
            "FLOWS_CODE_ACTIONS_REDIS": redis.url,
        },
        work,
        workers=1,
    )
    try:
        client = CodeClient(server, timeout=30)
        code = client.create(HELLO)
        before = get(server, "/health")
        redis.kill()
        ready, runs = [], []

        def degraded() -> bool:
            ready.append(get(server, "/health/ready")[0])
            runs.append(client.call(code).status_code)
            return get(server, "/health")[1]["status"] == "degraded"

        degraded_after = until(degraded)
        return {
            "health_before": before[1]["status"],
            "seconds_until_health_degraded": degraded_after,
            "health_status_code_then": get(server, "/health")[0],
            "ready_answers_meanwhile": sorted(set(ready)),
            "run_answers_meanwhile": sorted(set(runs)),
            "requests_meanwhile": len(runs),
        }
    finally:
        server.stop()
        redis.destroy()


def main() -> None:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["full_disk"] = full_disk(Path(tmp))
    print("full_disk", json.dumps(results["full_disk"]), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        results["redis_killed"] = redis_killed(Path(tmp))
    print("redis_killed", json.dumps(results["redis_killed"]), flush=True)
    print("saved", save("faults", results))


if __name__ == "__main__":
    main()
