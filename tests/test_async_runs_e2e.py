"""Async runs through a real `codeactions serve`, real `codeactions worker` processes, the real
RabbitMQ and PostgreSQL: 300 runs each executed exactly once, callbacks signed and retried,
workers SIGKILLed mid-run, bad input.

The workers run with SANDBOX_NETWORK=host (this module only) so that the code can tell a
loopback listener of the test that it ran: each execution is counted from outside.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from kombu import Connection

from codeactions_core.testing.fixtures import require_service
from codeactions_core.testing.server import (
    RunningProcess,
    RunningServer,
    run_cli,
    start_server,
    start_until_logged,
)
from tests.support.echo import Answer, EchoServer, Recorded, echo_server

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

DEADLINE = 90.0
READY = "taking async runs from queue"
RUNS = 300

TELL = """import json
import time
import urllib.request


def Run(engine):
    url = engine.params.get("echo") + "/ran/" + engine.params.get("n")
    with urllib.request.urlopen(url, data=b"", timeout=10) as answer:
        pause = json.loads(answer.read()).get("sleep", 0)
    time.sleep(pause)
    engine.result.set("ran " + engine.params.get("n"))
"""


def until(condition, what: str, deadline: float = DEADLINE):
    """Poll ``condition`` until it returns something true; fail naming ``what`` at the deadline."""
    give_up = time.monotonic() + deadline
    while not (value := condition()):
        assert time.monotonic() < give_up, f"timed out waiting for {what}"
        time.sleep(0.05)  # polling, not synchronisation
    return value


class Listener:
    """The echo server's answers: ``{"sleep": seconds}`` for the first ``count`` requests to a
    path when ``slow[path] == (count, seconds)``, else ``{"sleep": 0}``."""

    def __init__(self) -> None:
        self.slow: dict[str, tuple[int, float]] = {}
        self.seen: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    def __call__(self, request: Recorded) -> Answer:
        with self.lock:
            self.seen[request.path] += 1
            count, seconds = self.slow.get(request.path, (0, 0))
            slow = self.seen[request.path] <= count
        return Answer(body={"sleep": seconds if slow else 0})


@pytest.fixture(scope="module")
def listener() -> Iterator[tuple[EchoServer, Listener]]:
    answers = Listener()
    with echo_server(answers) as echo:
        yield echo, answers


@pytest.fixture(scope="module")
def environment(new_postgres_database, suite_env) -> dict[str, str]:
    """A fresh PostgreSQL, the real broker, an exchange and queue of this module only."""
    require_service("RabbitMQ", suite_env.rabbitmq_url, 5672)
    tag = uuid.uuid4().hex[:8]
    settings = {
        "FLOWS_CODE_ACTIONS_DB_TYPE": "postgres",
        "FLOWS_CODE_ACTIONS_DB_URI": new_postgres_database("ca_async"),
        "FLOWS_CODE_ACTIONS_RABBITMQ_URL": suite_env.rabbitmq_url,
        "FLOWS_CODE_ACTIONS_ASYNC_RUN_EXCHANGE": f"test.runs.{tag}",
        "FLOWS_CODE_ACTIONS_ASYNC_RUN_QUEUE": f"test.async-runs.{tag}",
        "FLOWS_CODE_ACTIONS_FLOW_EXCHANGE": f"test.flows.{tag}",
        "FLOWS_CODE_ACTIONS_FLOW_QUEUE": f"test.flow-executions.{tag}",
        "FLOWS_CODE_ACTIONS_FLOW_EGRESS_ALLOW": "127.0.0.1",  # the callback receiver is on loopback
        "FLOWS_CODE_ACTIONS_CALLBACK_BACKOFF_SECONDS": "0.1",
    }
    assert run_cli("migrate", settings=settings).returncode == 0
    return settings


@pytest.fixture(scope="module")
def server(environment, tmp_path_factory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("async-api")
    running = start_server({**environment, "FLOWS_CODE_ACTIONS_DATA_DIR": str(data)}, data)
    yield running
    # Runs it handed to the broker are the workers' to finish: SIGTERM ends it at once,
    # not after GRACEFUL_TIMEOUT spent waiting for them (then a SIGKILL: -9).
    assert running.stop() == 0, running.log()[-2000:]


@pytest.fixture(scope="module")
def start_worker(environment, tmp_path_factory) -> Iterator:
    started: list[RunningProcess] = []
    logs = tmp_path_factory.mktemp("async-workers")

    def start(name: str) -> RunningProcess:
        settings = {
            **environment,
            "FLOWS_CODE_ACTIONS_DATA_DIR": str(logs / name),
            "FLOWS_CODE_ACTIONS_SANDBOX_NETWORK": "host",  # the code calls the test's listener
            "FLOWS_CODE_ACTIONS_ASYNC_WORKER_THREADS": "4",
        }
        started.append(start_until_logged("worker", settings, logs, READY, name=name))
        return started[-1]

    yield start
    for worker in started:  # SIGTERM to all first: they drain side by side
        if worker.process.poll() is None:
            worker.process.terminate()
    for worker in started:
        worker.stop()


@pytest.fixture(scope="module")
def fleet(start_worker) -> list[RunningProcess]:
    return [start_worker(f"worker-{n}") for n in range(3)]


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def create_code(
    http: requests.Session, server: RunningServer, project: str = "P", timeout: int = 60
) -> str:
    answer = http.post(
        server.url("/code"),
        params={
            "name": "async",
            "language": "python",
            "type": "endpoint",
            "project_uuid": project,
            "timeout": timeout,
        },
        data=TELL.encode(),
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def run(http: requests.Session, server: RunningServer, run_id: str) -> dict:
    return http.get(server.url(f"/coderun/{run_id}")).json()


def async_record(http: requests.Session, server: RunningServer, run_id: str) -> dict:
    answer = http.get(server.url(f"/coderun/{run_id}/async"))
    assert answer.status_code == 200, answer.text
    return answer.json()


def finished(http: requests.Session, server: RunningServer, run_id: str) -> dict:
    return until(
        lambda: (r := run(http, server, run_id))["status"] in ("completed", "failed") and r,
        f"run {run_id} to finish",
    )


def worker_taking(workers: list[RunningProcess], run_id: str, attempt: int) -> RunningProcess:
    """The worker whose log says it started ``attempt`` of ``run_id``."""
    marker = f"async run {run_id}: attempt {attempt} by"
    return until(
        lambda: next((w for w in workers if marker in w.log()), None), f"a worker to log {marker!r}"
    )


def test_300_async_runs_on_three_workers_each_run_exactly_once(server, fleet, listener, http):
    echo, answers = listener
    code_id = create_code(http, server)

    def post(n: int) -> tuple[int, str]:
        with requests.Session() as session:
            answer = session.post(
                server.url(f"/run/{code_id}"),
                params={"async": "true", "n": f"many-{n}", "echo": echo.url},
            )
        assert answer.status_code == 202, answer.text
        body = answer.json()
        assert (
            body["status"] == "queued"
            and answer.headers["Location"] == f"/coderun/{body['run_id']}"
        )
        return n, body["run_id"]

    with ThreadPoolExecutor(8) as pool:
        accepted = dict(pool.map(post, range(RUNS)))

    runs = {n: finished(http, server, run_id) for n, run_id in accepted.items()}
    assert {n: (r["status"], r["result"]) for n, r in runs.items()} == {
        n: ("completed", f"ran many-{n}") for n in range(RUNS)
    }
    executed = collections.Counter(p for p in answers.seen if p.startswith("/ran/many-"))
    assert executed == collections.Counter({f"/ran/many-{n}": 1 for n in range(RUNS)}), (
        "each ran once"
    )
    assert len([r for r in echo.received() if r.path.startswith("/ran/many-")]) == RUNS
    records = [async_record(http, server, run_id) for run_id in accepted.values()]
    assert {(r["attempts"], r["redelivered"]) for r in records} == {(1, False)}
    by_worker = collections.Counter(r["worker"] for r in records)
    assert len(by_worker) == 3, f"every worker took runs: {by_worker}"
    taken = collections.Counter(
        match
        for worker in fleet
        for match in re.findall(r"async run (\S+): attempt \d+ by", worker.log())
    )
    assert taken == collections.Counter({run_id: 1 for run_id in accepted.values()})
    assert "params" in runs[0] and runs[0]["params"] == {"n": "many-0", "echo": echo.url}


def test_the_callback_is_signed_and_retried_after_a_500(server, fleet, http):
    project = f"cb-{uuid.uuid4().hex[:6]}"
    code_id = create_code(http, server, project)
    refused = http.post(
        server.url(f"/run/{code_id}"), params={"async": "1", "callback_url": "http://127.0.0.1:9/x"}
    )
    assert refused.status_code == 409 and "signing-key" in refused.json()["message"]
    issued = http.post(server.url(f"/projects/{project}/signing-key"))
    assert issued.status_code == 201
    key = issued.json()["signing_key"]
    shown = http.get(server.url(f"/projects/{project}/signing-key")).json()
    assert "signing_key" not in shown and shown["project_uuid"] == project

    calls = []

    def first_fails(request: Recorded) -> Answer:
        if request.path.startswith("/hook"):
            calls.append(request)
            return Answer(status=500 if len(calls) == 1 else 200, body={})
        return Answer(body={"sleep": 0})

    with echo_server(first_fails) as receiver:
        answer = http.post(
            server.url(f"/run/{code_id}"),
            params={
                "async": "true",
                "n": "cb",
                "echo": receiver.url,
                "callback_url": receiver.at("/hook?t=1"),
            },
        )
        assert answer.status_code == 202, answer.text
        run_id = answer.json()["run_id"]
        until(lambda: len(calls) >= 2, "the callback to be tried twice")
        record = until(
            lambda: (
                (r := async_record(http, server, run_id))["callback"]["state"] != "pending" and r
            ),
            "the callback's outcome to be stored",
        )
    assert record["callback"] == {"state": "delivered", "attempts": 2, "error": None}
    assert len(calls) == 2 and calls[0].body == calls[1].body
    assert [c.headers["x-codeactions-delivery"] for c in calls] == ["1", "2"]
    for call in calls:
        expected = "sha256=" + hmac.new(key.encode(), call.body, hashlib.sha256).hexdigest()
        assert call.headers["x-codeactions-signature"] == expected
        assert call.headers["x-codeactions-run-id"] == run_id
    delivered = json.loads(calls[1].body)
    assert (delivered["id"], delivered["status"], delivered["result"]) == (
        run_id,
        "completed",
        "ran cb",
    )
    assert delivered == run(http, server, run_id)


def test_the_endpoint_route_answers_202_when_asked_to_respond_async(server, fleet, listener, http):
    echo, answers = listener
    code_id = create_code(http, server)
    answer = http.get(
        server.url(f"/action/endpoint/{code_id}"),
        params={"n": "prefer", "echo": echo.url},
        headers={"Prefer": "respond-async, wait=5"},
    )
    assert answer.status_code == 202 and answer.headers["Preference-Applied"] == "respond-async"
    assert finished(http, server, answer.json()["run_id"])["result"] == "ran prefer"
    assert answers.seen["/ran/prefer"] == 1


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"async": "maybe"}, 400, "async must be true or false"),
        ({"async": "true", "callback_url": "ftp://example.com/hook"}, 400, "http:// or https://"),
        ({"async": "true", "callback_url": "not a url"}, 400, "whitespace"),
        ({"async": "true", "callback_url": "http://10.1.2.3/hook"}, 400, "egress policy"),
        ({"async": "true", "callback_url": "http://169.254.169.254/latest"}, 400, "egress policy"),
        ({"async": "true", "callback_url": "http://user:pw@127.0.0.1/hook"}, 400, "credentials"),
        ({"async": "true", "callback_url": "http:///nohost"}, 400, "no host"),
    ],
)
def test_bad_async_requests_are_refused_naming_the_problem(server, http, params, status, fragment):
    code_id = create_code(http, server)
    answer = http.post(server.url(f"/run/{code_id}"), params=params)
    assert answer.status_code == status and fragment in answer.json()["message"], answer.text


def test_async_on_an_unknown_code_is_404(server, http):
    answer = http.post(server.url(f"/run/{uuid.uuid4()}"), params={"async": "true"})
    assert answer.status_code == 404 and "not found" in answer.json()["message"]
    answer = http.get(
        server.url(f"/action/endpoint/{uuid.uuid4()}"), headers={"Prefer": "respond-async"}
    )
    assert answer.status_code == 404
    assert http.get(server.url(f"/coderun/{uuid.uuid4()}/async")).status_code == 404
    assert http.get(server.url("/projects/nobody/signing-key")).status_code == 404


def test_an_unreadable_message_is_dropped_and_the_workers_go_on(
    server, fleet, listener, environment, http
):
    echo, _ = listener
    with Connection(environment["FLOWS_CODE_ACTIONS_RABBITMQ_URL"]) as connection:
        channel = connection.default_channel
        for body, content_type in (
            (b"not json", "application/json"),
            (b'{"no": "run id"}', "application/json"),
            (b"<x/>", "application/xml"),
        ):
            message = channel.prepare_message(
                body, content_type=content_type, properties={"delivery_mode": 2}
            )
            channel.basic_publish(
                message,
                exchange=environment["FLOWS_CODE_ACTIONS_ASYNC_RUN_EXCHANGE"],
                routing_key="run",
            )
    until(
        lambda: sum(w.log().count("dropped an unreadable async run message") for w in fleet) == 3,
        "the three messages to be dropped",
    )
    code_id = create_code(http, server)
    answer = http.post(
        server.url(f"/run/{code_id}"), params={"async": "true", "n": "after", "echo": echo.url}
    )
    assert finished(http, server, answer.json()["run_id"])["result"] == "ran after"
    assert all(w.process.poll() is None for w in fleet)


def test_sigterm_lets_the_run_in_hand_finish_and_acknowledges_it(server, fleet, listener, http):
    echo, answers = listener
    code_id = create_code(http, server)
    answers.slow["/ran/terminated"] = (1, 1.5)
    answer = http.post(
        server.url(f"/run/{code_id}"), params={"async": "true", "n": "terminated", "echo": echo.url}
    )
    run_id = answer.json()["run_id"]
    taker = worker_taking(fleet, run_id, 1)
    until(lambda: answers.seen["/ran/terminated"] == 1, "the run to be executing")
    assert taker.stop() == 0
    fleet.remove(taker)
    assert f"async run {run_id}: attempt 1 finished completed" in taker.log()
    assert finished(http, server, run_id)["result"] == "ran terminated"
    record = async_record(http, server, run_id)
    assert (record["attempts"], record["redelivered"]) == (1, False), (
        "acknowledged: never redelivered"
    )
    assert answers.seen["/ran/terminated"] == 1


@pytest.mark.heavy
def test_sigkilled_workers_runs_are_retried_once_then_failed_never_lost(
    server, fleet, start_worker, listener, http
):
    echo, answers = listener
    code_id = create_code(http, server)
    alive = fleet  # the module's workers: those killed here leave it

    def start(n: str) -> str:
        answer = http.post(
            server.url(f"/run/{code_id}"), params={"async": "true", "n": n, "echo": echo.url}
        )
        assert answer.status_code == 202, answer.text
        return answer.json()["run_id"]

    # Killed once: the broker hands the run to another worker, which runs it to the end.
    answers.slow["/ran/killed-once"] = (1, 20)
    once = start("killed-once")
    taker = worker_taking(alive, once, 1)
    until(lambda: answers.seen["/ran/killed-once"] == 1, "the first attempt to be running")
    taker.kill()
    alive.remove(taker)
    retried = finished(http, server, once)
    assert (retried["status"], retried["result"]) == ("completed", "ran killed-once")
    record = async_record(http, server, once)
    assert (record["attempts"], record["redelivered"]) == (2, True)
    assert answers.seen["/ran/killed-once"] == 2

    # Killed twice: the third worker fails it instead of running it a third time.
    while len(alive) < 3:
        alive.append(start_worker(f"worker-spare-{len(alive)}"))
    answers.slow["/ran/killed-twice"] = (2, 20)
    twice = start("killed-twice")
    for attempt in (1, 2):
        taker = worker_taking(alive, twice, attempt)
        until(lambda a=attempt: answers.seen["/ran/killed-twice"] == a, f"attempt {attempt} to run")
        taker.kill()
        alive.remove(taker)
    failed = finished(http, server, twice)
    assert failed["status"] == "failed" and "not run again" in failed["result"]
    record = async_record(http, server, twice)
    assert (record["attempts"], record["redelivered"]) == (2, True)
    assert answers.seen["/ran/killed-twice"] == 2, "never a third execution"
    assert any(f"async run {twice}: abandoned" in w.log() for w in alive)
