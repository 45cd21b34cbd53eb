"""What a durable final write costs (issue 13): a run's writes through the SQL store, with
the final write committed asynchronously (before), synchronously (now), or everything
synchronous (DB_SYNCHRONOUS_RUNS=true).

    .venv/bin/python -m bench.final_write --runs 2000

Each "run" is what the run path writes: insert the run, store 3 log lines, finish it. The
store is the real one (SqlStore on the shared PostgreSQL, a new database, fsync as the
server has it); one thread (c=1) and 8 threads (c=8) in turn, the modes interleaved in
rounds so that drift of a noisy machine hits them alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg2
import psycopg2.extensions
from codeactions_sql.deadlines import wait_with_deadline
from codeactions_sql.store import SqlStore

from codeactions_core.model import CodeLog, CodeType, LogType, NewCode, RunStatus
from codeactions_core.settings import Settings
from codeactions_core.store import NewRun

POSTGRES = "postgres://postgres@127.0.0.1:5432"
MODES = {
    "final write async (before)": {"db_synchronous_runs": False, "final": "history"},
    "final write sync (now)": {"db_synchronous_runs": False, "final": "database"},
    "all sync (DB_SYNCHRONOUS_RUNS)": {"db_synchronous_runs": True, "final": "database"},
    "final write sync, no client deadline": {
        "db_synchronous_runs": False,
        "final": "database",
        "blocking": True,
    },
}


def new_database() -> str:
    name = f"ca_bench_{uuid.uuid4().hex[:8]}"
    connection = psycopg2.connect(f"{POSTGRES}/postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    return f"{POSTGRES}/{name}"


def open_mode(uri: str, mode: dict) -> SqlStore:
    store = SqlStore.from_settings(
        Settings(
            db_type="postgres",
            db_uri=uri,
            db_max_pool_size=16,
            db_synchronous_runs=mode["db_synchronous_runs"],
        )
    )
    if mode["final"] == "history":  # the routing before issue 13: every run write async
        store.runs._statements._final = store.history
    return store


def one_run(store: SqlStore, code_id: str) -> float:
    started = time.perf_counter()
    run = store.runs.create(NewRun(code_id=code_id, status=RunStatus.STARTED))
    store.logs.add_many(
        [
            CodeLog(id="", run_id=run.id, code_id=code_id, type=LogType.INFO, content=f"line {n}")
            for n in range(3)
        ]
    )
    store.runs.update(run.id, status=RunStatus.COMPLETED, result="ok", extra={"status_code": 200})
    store.release()
    return (time.perf_counter() - started) * 1000


def measure(store: SqlStore, code_id: str, runs: int, threads: int) -> dict:
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        latencies = sorted(pool.map(lambda _: one_run(store, code_id), range(runs)))
    seconds = time.perf_counter() - started
    return {
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
        "runs_per_s": runs / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="bench/out/final_write.json")
    args = parser.parse_args()
    uri = new_database()
    stores = {name: open_mode(uri, mode) for name, mode in MODES.items()}
    first = next(iter(stores.values()))
    first.migrate()
    code = first.codes.create(
        NewCode(
            name="b",
            type=CodeType.ENDPOINT,
            source="x",
            language="python",
            project_uuid="bench",
            timeout=10,
        )
    )
    results: dict = {name: {1: [], 8: []} for name in MODES}
    for _ in range(args.rounds):
        for threads in (1, 8):
            for name, store in stores.items():
                # psycopg2's blocking mode (before issue 13) or the wait callback with deadlines
                blocking = MODES[name].get("blocking", False)
                psycopg2.extensions.set_wait_callback(None if blocking else wait_with_deadline)
                results[name][threads].append(
                    measure(store, code.id, args.runs // args.rounds, threads)
                )
    summary = {
        name: {
            f"c={threads}": {key: statistics.median(m[key] for m in rounds) for key in rounds[0]}
            for threads, rounds in by_threads.items()
        }
        for name, by_threads in results.items()
    }
    for store in stores.values():
        store.close()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2))
    print("| mode | p50 c=1 | p99 c=1 | runs/s c=1 | p50 c=8 | runs/s c=8 |")
    print("|---|---|---|---|---|---|")
    for name, figures in summary.items():
        one, eight = figures["c=1"], figures["c=8"]
        print(
            f"| {name} | {one['p50_ms']:.2f} ms | {one['p99_ms']:.2f} ms | "
            f"{one['runs_per_s']:.0f} | {eight['p50_ms']:.2f} ms | {eight['runs_per_s']:.0f} |"
        )


if __name__ == "__main__":
    main()
