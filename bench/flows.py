"""Benchmark of flow executions (issue 6), the baseline measured in the same run.

    .venv/bin/python -m bench.flows [--executions 300]

A three-step flow without waits (three ``http_call`` steps to an HTTP server on
loopback, in its own process) on PostgreSQL:

- **direct**: the same three requests made by the ``http_call`` runner itself,
  one after the other, with no flow around them (the baseline);
- **engine**: the flow engine in this process: each execution created and
  driven to its end (claim, a record per step, a write after each step);
- **end to end**: ``codeactions serve`` taking ``POST /flows/{id}/executions``
  and announcing them over RabbitMQ to one ``codeactions worker``; the time
  until every execution is completed.

Each on 1 thread and on 4 (the worker's default FLOW_WORKER_THREADS).
Needs the PostgreSQL and RabbitMQ on localhost.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from bench.execution import new_database
from bench.harness import ROOT, save
from codeactions_core.flows.model import NewExecution
from codeactions_core.flows.runners import HttpCallRunner
from codeactions_core.flows.steps import StepContext
from codeactions_core.services.schema import ensure_schema_ready
from codeactions_core.settings import Settings
from codeactions_core.testing.server import child_env, run_cli, start_server, start_until_logged
from codeactions_core.wiring import build_services

RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"
THREADS = 4


def start_echo() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.echo"],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env({}),
        cwd=ROOT,
    )
    return process, process.stdout.readline().strip()


def steps_for(url: str) -> list[dict]:
    return [
        {
            "id": name,
            "type": "http_call",
            "name": name,
            "config": {
                "method": "POST",
                "url": f"{url}/{name}",
                "body": {"lead": "{{leadId}}", "step": name},
            },
        }
        for name in ("first", "second", "third")
    ]


def rate(count: int, threads: int, one: Callable[[int], object]) -> float:
    """Executions per second doing ``one(i)`` for ``count`` items on ``threads`` threads."""
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(count)))
    return count / (time.perf_counter() - started)


def direct(url: str, count: int, threads: int) -> float:
    runner = HttpCallRunner()
    context = StepContext(
        execution_id="x", flow_id="f", project_uuid="bench", step_id="s", lead_id="1"
    )
    configs = [
        {"method": "POST", "url": f"{url}/{name}", "body": {"lead": "1", "step": name}}
        for name in ("first", "second", "third")
    ]

    def one(_: int) -> None:
        for config in configs:
            runner.execute(config, context, lambda *a, **k: None)

    return rate(count, threads, one)


class Timed:
    """Wraps methods of an object to record how long each call takes (the overhead's parts)."""

    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = collections.defaultdict(list)

    def wrap(self, owner: object, *names: str) -> None:
        for name in names:
            setattr(owner, name, self._timed(name, getattr(owner, name)))

    def _timed(self, name: str, method: Callable) -> Callable:
        def timed(*args: object, **kwargs: object) -> object:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.calls[name].append(time.perf_counter() - started)

        return timed

    def per_execution(self, executions: int) -> dict[str, dict[str, float]]:
        return {
            name: {"calls": len(times) / executions, "median_ms": statistics.median(times) * 1000}
            for name, times in self.calls.items()
        }


def engine(
    url: str, database: str, count: int, threads: int, data_dir: str, timed: Timed | None = None
) -> float:
    settings = Settings(
        db_type="postgres", db_uri=database, data_dir=data_dir, flows_in_server=False
    )
    services = build_services(settings)
    try:
        ensure_schema_ready(services.store)
        flow = services.flows.create_flow({"name": "bench", "project_uuid": "bench"}, "bench")
        services.flows.create_version(flow.id, {"steps": steps_for(url)}, "bench")
        version = services.flows.publish(flow.id, 1)
        flows, drive = services.store.flows, services.flow_driver._engine.drive

        def one(i: int) -> None:
            execution = flows.create_execution(NewExecution(flow.id, version.id, lead_id=str(i)))
            outcome = drive(execution.id)
            assert outcome.next.value == "done", outcome
            services.store.release()

        one(-1)  # warm up
        if timed is None:
            return rate(count, threads, one)
        timed.wrap(flows, "create_execution", "claim", "save")
        execute = HttpCallRunner.execute
        timed.wrap(HttpCallRunner, "execute")
        try:
            return rate(count, threads, one)
        finally:
            HttpCallRunner.execute = execute
    finally:
        services.close()


def end_to_end(url: str, database: str, count: int, tmp: Path) -> dict[str, float]:
    settings = {
        "FLOWS_CODE_ACTIONS_DB_TYPE": "postgres",
        "FLOWS_CODE_ACTIONS_DB_URI": database,
        "FLOWS_CODE_ACTIONS_RABBITMQ_URL": RABBITMQ,
        "FLOWS_CODE_ACTIONS_FLOW_QUEUE": f"bench.flows.{tmp.name}",
        "FLOWS_CODE_ACTIONS_FLOW_EXCHANGE": f"bench.flows.{tmp.name}",
        "FLOWS_CODE_ACTIONS_FLOW_WORKER_THREADS": str(THREADS),
    }
    server = start_server(
        {**settings, "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp / "api")}, tmp, workers=2
    )
    worker = start_until_logged(
        "worker",
        {**settings, "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp / "worker")},
        tmp,
        "taking due flow",
    )
    try:
        base = server.base_url
        flow = requests.post(
            f"{base}/flows", json={"name": "bench", "project_uuid": "bench"}, timeout=10
        ).json()
        requests.post(
            f"{base}/flows/{flow['id']}/versions", json={"steps": steps_for(url)}, timeout=10
        )
        requests.post(f"{base}/flows/{flow['id']}/versions/1/publish", timeout=10)
        executions = f"{base}/flows/{flow['id']}/executions"
        latencies = []
        for i in range(20):
            started = time.perf_counter()
            answer = requests.post(
                executions, params={"wait": "true"}, json={"lead_id": i}, timeout=60
            )
            latencies.append((time.perf_counter() - started) * 1000)
            assert answer.json()["status"] == "completed", answer.text

        started = time.perf_counter()
        with requests.Session() as session, ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda i: session.post(executions, json={"lead_id": i}, timeout=30),
                    range(count),
                )
            )
        while True:
            done = requests.get(
                executions, params={"status": "completed", "limit": 1000}, timeout=30
            ).json()
            if len(done) >= count + 20:
                break
            time.sleep(0.05)  # polling for the worker to finish
        return {
            "wait_true_p50_ms": statistics.median(latencies),
            "executions_per_second": count / (time.perf_counter() - started),
        }
    finally:
        worker.stop()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executions", type=int, default=300)
    args = parser.parse_args()
    count = args.executions
    echo, url = start_echo()
    results: dict = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            database = new_database()
            assert (
                run_cli(
                    "migrate",
                    settings={
                        "FLOWS_CODE_ACTIONS_DB_TYPE": "postgres",
                        "FLOWS_CODE_ACTIONS_DB_URI": database,
                    },
                ).returncode
                == 0
            )
            direct(url, 20, 1)  # warm up
            for threads in (1, THREADS):
                results[f"direct_{threads}"] = direct(url, count, threads)
                results[f"engine_{threads}"] = engine(url, database, count, threads, tmp)
            timed = Timed()
            engine(url, database, count, 1, tmp, timed)
            results["engine_calls"] = timed.per_execution(count)
            results["end_to_end"] = end_to_end(url, database, count, Path(tmp))
    finally:
        echo.kill()
    for threads in (1, THREADS):
        d, e = results[f"direct_{threads}"], results[f"engine_{threads}"]
        results[f"overhead_ms_{threads}"] = (1 / e - 1 / d) * 1000 * threads
    print(report(results))
    save("flows", results)


def report(r: dict) -> str:
    e2e = r["end_to_end"]
    rows = [
        "| way | executions/s, 1 thread | executions/s, 4 threads |",
        "|---|---|---|",
        (
            f"| direct (3 http_call runs, no flow) | {r['direct_1']:.0f} "
            f"| {r[f'direct_{THREADS}']:.0f} |"
        ),
        (
            f"| flow engine in-process (PostgreSQL) | {r['engine_1']:.0f} "
            f"| {r[f'engine_{THREADS}']:.0f} |"
        ),
        f"| end to end: serve + RabbitMQ + 1 worker | | {e2e['executions_per_second']:.0f} |",
        "",
        (
            f"flow overhead per execution: {r['overhead_ms_1']:.2f} ms (1 thread), "
            f"{r[f'overhead_ms_{THREADS}']:.2f} ms of thread time ({THREADS} threads); "
            f"engine/direct: {r['engine_1'] / r['direct_1']:.2f} (1 thread); "
            f"POST ?wait=true p50: {e2e['wait_true_p50_ms']:.1f} ms"
        ),
        "",
        "engine, 1 thread, per execution: "
        + ", ".join(
            f"{name} {call['calls']:g} × {call['median_ms']:.2f} ms"
            for name, call in r["engine_calls"].items()
        ),
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    main()
