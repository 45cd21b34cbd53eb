"""Benchmark of running code actions (issue 3), baselines measured in the same run.

    .venv/bin/python bench/execution.py [--seconds 10] [--memory-runs 10000]

Measures a trivial Python action through /action/endpoint on SQLite and on
PostgreSQL at concurrency 1 (latency) and 8 (throughput), next to (a) a bare
Falcon app on the same gunicorn settings — the floor — and (b) the old
service's strategy: a fresh interpreter per run importing boto3, requests and
psycopg2 and connecting to the database. Then server memory across many runs,
and JavaScript and Go when their toolchains are installed. Needs wrk, the
PostgreSQL on localhost and boto3 (pip install boto3) for the old strategy.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import psycopg2
import requests

from bench.harness import (
    Load,
    gunicorn,
    hammer,
    save,
    server_memory,
    wait_until_up,
    wrk,
)
from codeactions_core.testing.server import run_cli, start_server

POSTGRES = "postgres://postgres@127.0.0.1:5432"
ACTIONS = {
    "python": 'def Run(engine):\n    engine.result.set("hi")\n',
    "javascript": 'exports.Run = (engine) => engine.result.set("hi");\n',
    "go": 'package main\n\nfunc Run(engine *Engine) {\n\tengine.Result.Set("hi", 200, "text")\n}\n',
}


def create_code(base_url: str, language: str, source: str | None = None) -> str:
    answer = requests.post(
        f"{base_url}/code",
        params={
            "name": f"bench-{language}",
            "language": language,
            "type": "endpoint",
            "project_uuid": "bench",
        },
        data=(source or ACTIONS[language]).encode(),
        timeout=120,
    )
    answer.raise_for_status()
    return answer.json()["id"]


def new_database() -> str:
    name = f"ca_bench_{uuid.uuid4().hex[:8]}"
    connection = psycopg2.connect(f"{POSTGRES}/postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    return f"{POSTGRES}/{name}"


def measure(url: str, seconds: float) -> dict[str, Load]:
    wrk(url, connections=2, seconds=2)  # warm up
    return {
        "c1": wrk(url, connections=1, seconds=seconds),
        "c8": wrk(url, connections=8, seconds=seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--memory-runs", type=int, default=10_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ca-bench-"))
    results: dict = {"seconds": args.seconds}
    processes: list = []
    servers: dict = {}
    try:
        hello, hello_url = gunicorn("bench.apps.hello:app", work)
        processes.append(hello)
        old_database = new_database()
        old, old_url = gunicorn(f"bench.apps.old_strategy:create_app({old_database!r})", work)
        processes.append(old)

        servers["sqlite"] = sqlite = start_server(
            {"FLOWS_CODE_ACTIONS_DATA_DIR": str(work / "sqlite")}, work
        )
        postgres_uri = new_database()
        postgres_settings = {
            "FLOWS_CODE_ACTIONS_DB_TYPE": "postgres",
            "FLOWS_CODE_ACTIONS_DB_URI": postgres_uri,
            "FLOWS_CODE_ACTIONS_DATA_DIR": str(work / "postgres"),
        }
        run_cli("migrate", settings=postgres_settings).check_returncode()
        servers["postgres"] = start_server(postgres_settings, work)
        for url in (f"{hello_url}/hello", f"{old_url}/run"):
            wait_until_up(url)

        targets = {"hello (floor)": f"{hello_url}/hello", "old strategy": f"{old_url}/run"}
        for name, server in servers.items():
            targets[f"codeactions {name}"] = server.url(
                f"/action/endpoint/{create_code(server.base_url, 'python')}"
            )
        for name, url in targets.items():
            results[name] = {k: v.as_dict() for k, v in measure(url, args.seconds).items()}
            print(name, results[name], flush=True)

        results["memory"] = memory_profile(sqlite, args.memory_runs)
        print("memory", results["memory"], flush=True)
        results["languages"] = other_languages(sqlite, args.seconds)
        print("languages", results["languages"], flush=True)
    finally:
        for server in servers.values():
            server.stop()
        for process in processes:
            process.terminate()
            process.wait()
    path = save("execution", results)
    print(report(results))
    print(f"\n(raw figures in {path})")


def memory_profile(server, runs: int) -> dict:
    url = server.url(f"/action/endpoint/{create_code(server.base_url, 'python')}")
    hammer(url, 500, 4)
    before = server_memory(server.process.pid)
    failures = hammer(url, runs, 8)
    after = server_memory(server.process.pid)
    return {
        "runs": runs,
        "failures": failures,
        "before_mb": round(before / 2**20, 1),
        "after_mb": round(after / 2**20, 1),
        "growth_percent": round(100 * (after - before) / before, 1),
    }


def other_languages(server, seconds: float) -> dict:
    found: dict = {}
    health = requests.get(server.url("/health"), timeout=10).json()["runtimes"]
    if health.get("javascript", {}).get("ready"):
        url = server.url(f"/action/endpoint/{create_code(server.base_url, 'javascript')}")
        found["javascript"] = measure(url, seconds)["c1"].as_dict()
    if health.get("go", {}).get("ready"):
        marker = uuid.uuid4().hex  # a new source: nothing cached
        source = ACTIONS["go"].replace('"hi"', f'"hi {marker}"')
        code_id = create_code(server.base_url, "go", source)
        started = time.perf_counter()
        first = requests.get(server.url(f"/action/endpoint/{code_id}"), timeout=120)
        first_run = time.perf_counter() - started
        assert first.status_code == 200, first.text
        found["go"] = {
            "first_run_s": round(first_run, 2),
            **measure(server.url(f"/action/endpoint/{code_id}"), seconds)["c1"].as_dict(),
        }
    return found


def report(results: dict) -> str:
    floor, old = results["hello (floor)"], results["old strategy"]
    lines = [
        "| server | p50 c=1 (ms) | p99 c=1 (ms) | runs/s c=8 | p50 c=8 (ms) | × old (c=8) |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("hello (floor)", "codeactions sqlite", "codeactions postgres", "old strategy"):
        c1, c8 = results[name]["c1"], results[name]["c8"]
        ratio = c8["requests_per_second"] / old["c8"]["requests_per_second"]
        lines.append(
            f"| {name} | {c1['p50_ms']:.2f} | {c1['p99_ms']:.2f} | "
            f"{c8['requests_per_second']:.0f} | {c8['p50_ms']:.2f} | {ratio:.0f}× |"
        )
    memory = results["memory"]
    lines.append(
        f"\nmemory: {memory['before_mb']} MB → {memory['after_mb']} MB after {memory['runs']} runs "
        f"({memory['growth_percent']:+}%), {memory['failures']} failures"
    )
    for language, figures in results["languages"].items():
        extra = (
            f", first run (compile) {figures['first_run_s']} s" if "first_run_s" in figures else ""
        )
        lines.append(f"{language}: p50 c=1 {figures['p50_ms']:.2f} ms{extra}")
    lines.append(f"\nfloor p50 c=1: {floor['c1']['p50_ms']:.2f} ms")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
