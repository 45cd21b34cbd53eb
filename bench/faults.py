"""Fault figures of issue 13 (13B): runs never left hanging, bounded waits, the outbox.

    .venv/bin/python -m bench.faults [--only frozen --repeat 3]

A private PostgreSQL (initdb in a temporary directory, free port) and `codeactions serve`
(2 workers, every setting at its default: RUN_LEASE_SECONDS=15, DB_STATEMENT_TIMEOUT=10,
DB_CONNECT_TIMEOUT=5) under load from 8 client threads calling `POST /run/{id}` (whose
answer names the run). Faults: a gunicorn worker SIGKILLed; PostgreSQL crashed (immediate
stop) and restarted; PostgreSQL frozen (SIGSTOP) for 20 s; PostgreSQL stopped for 5 s while
runs execute; `serve` SIGKILLed and restarted. For each: answers by status, time to the
first 503, time to recovery, and, once settled, runs left non-terminal and runs whose answer showed
them `completed` that are not `completed` in the database (both must be 0).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import requests

from codeactions_core.testing.server import RunningServer, run_cli, start_server
from tests.support.postgres import PrivatePostgres, wait_until
from tests.support.processes import children

CLIENTS = 8
SLEEP = "import time\ndef Run(engine):\n    time.sleep({seconds})\n    engine.result.set('ok')\n"


@dataclass
class Answer:
    started: float
    ended: float
    status: int  # 0: no HTTP answer (connection reset)
    run_id: str | None
    run_status: str = ""
    """The run as the answer showed it (`POST /run` answers 200 with failed runs too)."""

    @property
    def completed(self) -> bool:
        return self.status == 200 and self.run_status == "completed" and bool(self.run_id)


@dataclass
class Load:
    server: RunningServer
    code_id: str
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for _ in range(CLIENTS):
            thread = threading.Thread(target=self._client, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> list[Answer]:
        self._stop.set()
        for thread in self._threads:
            thread.join(120)
        return self.answers

    def _client(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                answer = session.post(self.server.url(f"/run/{self.code_id}"), timeout=120)
                run = answer.json()["result"] if answer.status_code == 200 else {}
                run_id, run_status = run.get("id"), run.get("status", "")
                status = answer.status_code
            except (requests.RequestException, ValueError):
                status, run_id, run_status = 0, None, ""
                session = requests.Session()
                time.sleep(0.1)  # a dead server: do not spin
            self.answers.append(Answer(started, time.monotonic(), status, run_id, run_status))


def query(pg: PrivatePostgres, sql: str, *args: object) -> list[tuple]:
    try:
        connection = psycopg2.connect(pg.uri(), connect_timeout=2)
    except psycopg2.OperationalError:
        return []
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, args)
            return cursor.fetchall()
    finally:
        connection.close()


def unfinished(pg: PrivatePostgres, code_id: str) -> int:
    rows = query(
        pg,
        "SELECT count(*) FROM coderuns WHERE code_id = %s AND status IN ('queued', 'started')",
        code_id,
    )
    return rows[0][0] if rows else -1


def settle(pg: PrivatePostgres, code_id: str, deadline: float = 60) -> float:
    """Seconds until the code has no unfinished run (or the deadline)."""
    started = time.monotonic()
    wait_until(lambda: unfinished(pg, code_id) == 0, deadline, 0.2)
    return time.monotonic() - started


def summary(
    pg: PrivatePostgres,
    code_id: str,
    answers: list[Answer],
    fault_at: float,
    recovered_at: float | None,
) -> dict:
    ok_ids = [a.run_id for a in answers if a.completed]
    waited = time.monotonic()  # outbox replays run every third of the lease
    wait_until(lambda: recorded_ok(pg, [a for a in answers if a.completed]), 30, 0.2)
    waited = time.monotonic() - waited
    statuses = dict(query(pg, "SELECT id::text, status FROM coderuns WHERE code_id = %s", code_id))
    first_503 = min(
        (a.ended for a in answers if a.status == 503 and a.ended >= fault_at), default=None
    )
    first_ok_after = None
    if recovered_at is not None:
        first_ok_after = min(
            (a.ended for a in answers if a.status == 200 and a.started >= recovered_at),
            default=None,
        )
    during = [a.ended - a.started for a in answers if a.started >= fault_at - 1]
    by_status: dict[str, int] = {}
    for answer in answers:
        key = f"{answer.status} {answer.run_status}".strip()
        by_status[key] = by_status.get(key, 0) + 1
    return {
        "answers": by_status,
        "seconds_to_first_503": None if first_503 is None else round(first_503 - fault_at, 1),
        "longest_request_s": round(max(during, default=0), 1),
        "seconds_to_recovery": None
        if first_ok_after is None
        else round(first_ok_after - recovered_at, 1),
        "runs_left_non_terminal": unfinished(pg, code_id),
        "answered_completed_not_completed": sum(statuses.get(i) != "completed" for i in ok_ids),
        "answered_completed_now_by_status": {
            str(status): sum(statuses.get(i) == status for i in ok_ids)
            for status in {statuses.get(i) for i in ok_ids}
            if status != "completed"
        },
        "seconds_waited_for_outbox_replays": round(waited, 1),
    }


def create(server: RunningServer, seconds: float) -> str:
    answer = requests.post(
        server.url("/code"),
        data=SLEEP.format(seconds=seconds).encode(),
        timeout=30,
        params={
            "name": "f",
            "language": "python",
            "type": "endpoint",
            "project_uuid": "P",
            "timeout": 60,
        },
    )
    answer.raise_for_status()
    return answer.json()["id"]


def worker_kill(pg: PrivatePostgres, server: RunningServer) -> dict:
    code_id = create(server, 0.5)
    load = Load(server, code_id).start()
    time.sleep(3)  # the load runs before the fault
    os.kill(children(server.process.pid)[0], signal.SIGKILL)
    killed = time.monotonic()
    time.sleep(5)
    answers = load.stop()
    result = summary(pg, code_id, answers, killed, None)
    settle(pg, code_id)
    result["seconds_from_kill_to_all_terminal"] = round(time.monotonic() - killed, 1)
    result["runs_left_non_terminal"] = unfinished(pg, code_id)
    return result


def under_load(
    pg: PrivatePostgres,
    server: RunningServer,
    code_seconds: float,
    fault: Callable[[], None],
    heal: Callable[[], None],
    down_for: float,
    then_for: float,
) -> tuple[str, list[Answer], float, float]:
    """Runs of a code sleeping ``code_seconds`` keep coming; 3 s in, ``fault``; ``down_for``
    seconds later ``heal``; ``then_for`` seconds more of load. The code, the answers, and
    when the fault began and was healed."""
    code_id = create(server, code_seconds)
    load = Load(server, code_id).start()
    time.sleep(3)  # bench only: load before the fault
    began = time.monotonic()
    fault()
    time.sleep(down_for)  # bench only: how long the fault lasts
    heal()
    healed = time.monotonic()
    time.sleep(then_for)  # bench only: load after it
    return code_id, load.stop(), began, healed


def database_crash(pg: PrivatePostgres, server: RunningServer) -> dict:
    code_id, answers, crashed, back = under_load(pg, server, 0, pg.crash, pg.resume, 2, 5)
    settle(pg, code_id)
    return summary(pg, code_id, answers, crashed, back)


def database_frozen(pg: PrivatePostgres, server: RunningServer) -> dict:
    code_id, answers, frozen, thawed = under_load(pg, server, 0, pg.freeze, pg.thaw, 20, 5)
    settle(pg, code_id)
    return summary(pg, code_id, answers, frozen, thawed)


def database_gone_mid_run(pg: PrivatePostgres, server: RunningServer) -> dict:
    code_id, answers, stopped, back = under_load(
        pg, server, 2, lambda: pg.stop("fast"), pg.resume, 5, 6
    )
    answered_while_down = [a for a in answers if a.completed and stopped <= a.ended <= back]
    recorded = wait_until(lambda: recorded_ok(pg, answered_while_down), 60, 0.2)
    recorded_after = time.monotonic() - back
    settle(pg, code_id)
    result = summary(pg, code_id, answers, stopped, back)
    result["answered_completed_while_database_down"] = len(answered_while_down)
    result["seconds_from_return_to_those_recorded_completed"] = (
        round(recorded_after, 1) if recorded else None
    )
    return result


def recorded_ok(pg: PrivatePostgres, answers: list[Answer]) -> bool:
    ids = [a.run_id for a in answers if a.run_id]
    rows = query(
        pg, "SELECT count(*) FROM coderuns WHERE id::text = ANY(%s) AND status = 'completed'", ids
    )
    return bool(rows) and rows[0][0] == len(ids)


def serve_restart(pg: PrivatePostgres, settings: dict, logs: Path) -> dict:
    first = start_server(settings, logs, workers=2)
    code_id = create(first, 20)
    load = Load(first, code_id).start()
    wait_until(lambda: unfinished(pg, code_id) >= CLIENTS, 30)
    for pid in [first.process.pid, *children(first.process.pid)]:
        os.kill(pid, signal.SIGKILL)
    first.process.wait()
    load.stop()
    left = unfinished(pg, code_id)
    restarted = time.monotonic()
    second = start_server(settings, logs, workers=2)
    answering = time.monotonic() - restarted
    try:
        return {
            "runs_in_flight_at_kill": left,
            "seconds_to_answer_after_restart": round(answering, 1),
            "runs_left_non_terminal_once_answering": unfinished(pg, code_id),
        }
    finally:
        second.stop()


SCENARIOS = {
    "worker-kill": ("worker SIGKILL", worker_kill),
    "crash": ("PostgreSQL crash, restarted after 2 s", database_crash),
    "frozen": ("PostgreSQL frozen 20 s", database_frozen),
    "stopped": ("PostgreSQL stopped 5 s during 2 s runs", database_gone_mid_run),
}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(SCENARIOS), help="one scenario (no restart)")
    parser.add_argument("--repeat", type=int, default=1, help="times each scenario runs")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    chosen = [SCENARIOS[args.only]] if args.only else list(SCENARIOS.values())
    pg = PrivatePostgres.start()
    root = Path(tempfile.mkdtemp(prefix="codeactions-faults-"))
    try:
        settings = {
            "FLOWS_CODE_ACTIONS_DB_TYPE": "postgres",
            "FLOWS_CODE_ACTIONS_DB_URI": pg.uri(),
            "FLOWS_CODE_ACTIONS_DATA_DIR": str(root / "data"),
            "FLOWS_CODE_ACTIONS_CODE_LIMITER_MAX_REQUESTS": "1000000",
        }
        done = run_cli("migrate", settings=settings)
        assert done.returncode == 0, done.stderr
        results = {}
        server = start_server(settings, root, workers=2)
        try:
            for name, scenario in chosen:
                for _ in range(args.repeat):
                    results[name] = scenario(pg, server)
                    print(name, json.dumps(results[name]), flush=True)
        finally:
            server.stop()
        if not args.only:
            results["serve SIGKILL and restart"] = serve_restart(pg, settings, root)
            print("serve SIGKILL and restart", json.dumps(results["serve SIGKILL and restart"]))
        Path("bench/out").mkdir(parents=True, exist_ok=True)
        Path("bench/out/faults.json").write_text(json.dumps(results, indent=2))
    finally:
        pg.destroy()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
