"""Benchmark of async runs (issue 15), the baselines measured in the same run.

    .venv/bin/python -m bench.async_runs [--runs 600]

A trivial Python action on PostgreSQL and RabbitMQ through one ``codeactions serve``
(2 gunicorn workers):

- **sync**: ``POST /run/{id}`` answering the finished run (the baseline): runs/s at 8
  concurrent callers;
- **accept**: ``POST /run/{id}?async=true`` answering 202 once the broker confirmed the
  message: p50/p99 latency at 1 caller, accepted/s at 8 callers;
- **drain**: the time from the first accepted run until every one is completed, with
  1 and with 3 ``codeactions worker`` processes (ASYNC_WORKER_THREADS=4 each).

The machine has 2 shared cores: the workers compete with the server, the broker and
PostgreSQL for them, so the 3-worker figure shows the overhead of the fleet rather than
scaling; on separate machines each worker adds its own cores.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from bench.execution import new_database
from bench.harness import save
from codeactions_core.testing.server import (
    RunningProcess,
    run_cli,
    start_server,
    start_until_logged,
)

RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"
SOURCE = "def Run(engine):\n    engine.result.set('hi ' + engine.params.get('n', ''))\n"


def post_all(url: str, count: int, params: dict[str, str]) -> tuple[float, list[str]]:
    """POST ``count`` runs on 8 threads; the rate and the run ids (async) or results."""

    def one(i: int) -> str:
        with requests.Session() as session:
            answer = session.post(url, params={**params, "n": str(i)}, timeout=60)
        answer.raise_for_status()
        body = answer.json()
        return body.get("run_id") or body["result"]["id"]

    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(one, range(count)))
    return count / (time.perf_counter() - started), ids


def new_code(base: str) -> str:
    return requests.post(
        f"{base}/code",
        params={
            "name": "bench",
            "language": "python",
            "type": "endpoint",
            "project_uuid": "bench",
        },
        data=SOURCE,
        timeout=30,
    ).json()["id"]


def wait_completed(base: str, code_id: str, expected: int) -> None:
    """Until ``expected`` runs of the code are completed (``/coderun`` lists at most 1000)."""
    while True:
        runs = requests.get(f"{base}/coderun", params={"code_id": code_id}, timeout=30).json()
        if sum(run["status"] == "completed" for run in runs) >= expected:
            return
        time.sleep(0.05)  # polling for the workers to finish


def drain(base: str, count: int) -> float:
    """Runs/s from accepting ``count`` async runs of a new code until all are completed."""
    code_id = new_code(base)
    started = time.perf_counter()
    post_all(f"{base}/run/{code_id}", count, {"async": "true"})
    wait_completed(base, code_id, count)
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=600)
    count = min(parser.parse_args().runs, 1000)  # /coderun lists at most 1000 runs of a code
    tag = uuid.uuid4().hex[:8]
    database = new_database()
    settings = {
        "FLOWS_CODE_ACTIONS_DB_TYPE": "postgres",
        "FLOWS_CODE_ACTIONS_DB_URI": database,
        "FLOWS_CODE_ACTIONS_RABBITMQ_URL": RABBITMQ,
        "FLOWS_CODE_ACTIONS_ASYNC_RUN_QUEUE": f"bench.async-runs.{tag}",
        "FLOWS_CODE_ACTIONS_ASYNC_RUN_EXCHANGE": f"bench.runs.{tag}",
        "FLOWS_CODE_ACTIONS_FLOW_QUEUE": f"bench.flows.{tag}",
        "FLOWS_CODE_ACTIONS_FLOW_EXCHANGE": f"bench.flows.{tag}",
    }
    assert run_cli("migrate", settings=settings).returncode == 0
    results: dict = {"runs": count}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        server = start_server(
            {**settings, "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp / "api")}, tmp, workers=2
        )
        workers: list[RunningProcess] = []

        def add_worker() -> None:
            name = f"worker-{len(workers)}"
            workers.append(
                start_until_logged(
                    "worker",
                    {**settings, "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp / name)},
                    tmp,
                    "taking async runs",
                    name=name,
                )
            )

        try:
            base = server.base_url
            add_worker()
            run_url = f"{base}/run/{new_code(base)}"
            post_all(run_url, 50, {})  # warm up the server and the worker
            results["sync_runs_per_second_c8"], _ = post_all(run_url, count, {})
            code_id = new_code(base)
            latencies = []
            for i in range(200):
                started = time.perf_counter()
                requests.post(
                    f"{base}/run/{code_id}", params={"async": "true", "n": str(i)}, timeout=30
                ).raise_for_status()
                latencies.append((time.perf_counter() - started) * 1000)
            results["accept_p50_ms_c1"] = statistics.median(latencies)
            results["accept_p99_ms_c1"] = statistics.quantiles(latencies, n=100)[98]
            wait_completed(base, code_id, 200)  # drained before the next measurement
            code_id = new_code(base)
            results["accepted_per_second_c8"], _ = post_all(
                f"{base}/run/{code_id}", count, {"async": "true"}
            )
            wait_completed(base, code_id, count)
            results["drain_runs_per_second_1_worker"] = drain(base, count)
            add_worker()
            add_worker()
            results["drain_runs_per_second_3_workers"] = drain(base, count)
        finally:
            for worker in workers:
                worker.stop()
            server.stop()
    print(save("async_runs", results))
    for name, value in results.items():
        print(f"{name:36} {value:10.2f}" if isinstance(value, float) else f"{name:36} {value}")


if __name__ == "__main__":
    main()
