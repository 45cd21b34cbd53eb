"""Async runs in-process: the server's own pool (no broker), the life cycle rules a worker
follows (never run a finished run again, at most one more attempt), callbacks (signature,
retries, the egress policy) and a broker that does not take the run."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest
from kombu import Connection
from kombu.pools import producers

from codeactions_core.async_queue import PublishRuns, run_queue
from codeactions_core.async_store import CallbackState
from codeactions_core.errors import InvalidInput
from codeactions_core.flows.runners import Egress, flow_egress
from codeactions_core.model import CodeRun, RunStatus
from codeactions_core.services.async_runs import GAVE_UP, MAX_ATTEMPTS, RunHere
from codeactions_core.services.callbacks import (
    CallbackSender,
    check_callback_url,
    signature,
    verify,
)
from codeactions_core.settings import Settings
from codeactions_core.testing.api import api_client
from codeactions_core.testing.fixtures import require_service
from codeactions_core.testing.server import free_port
from tests.support.echo import Answer, Recorded, echo_server

SOURCE = "def Run(engine):\n    engine.result.set('got ' + engine.params.get('x', '-'))\n"
DEADLINE = 30.0


def until(condition, what: str, deadline: float = DEADLINE):
    give_up = time.monotonic() + deadline
    while not (value := condition()):
        assert time.monotonic() < give_up, f"timed out waiting for {what}"
        time.sleep(0.02)  # polling, not synchronisation
    return value


@pytest.fixture
def api(tmp_path):
    settings = Settings.from_env(
        {
            "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path),
            "FLOWS_CODE_ACTIONS_FLOW_EGRESS_ALLOW": "127.0.0.1",
            "FLOWS_CODE_ACTIONS_CALLBACK_BACKOFF_SECONDS": "0",
        }
    )
    with api_client(settings) as (client, services):
        yield client, services


def create(client, project: str = "P") -> str:
    answer = client.simulate_post(
        "/code",
        params={
            "name": "a",
            "language": "python",
            "type": "endpoint",
            "project_uuid": project,
        },
        body=SOURCE,
    )
    assert answer.status_code == 201, answer.text
    return answer.json["id"]


def finished(client, run_id: str) -> dict:
    return until(
        lambda: (
            (r := client.simulate_get(f"/coderun/{run_id}").json)["status"]
            in ("completed", "failed")
            and r
        ),
        f"run {run_id} to finish",
    )


def test_without_a_broker_the_servers_pool_runs_it_and_calls_back(api):
    client, services = api
    assert isinstance(services.async_runs.submitter, RunHere)
    code_id = create(client)
    key = client.simulate_post("/projects/P/signing-key").json["signing_key"]
    with echo_server(lambda request: Answer(body={})) as receiver:
        answer = client.simulate_post(
            f"/run/{code_id}",
            params={
                "async": "yes",
                "x": "1",
                "callback_url": receiver.at("/done"),
            },
        )
        assert (
            answer.status_code == 202
            and answer.headers["location"] == f"/coderun/{answer.json['run_id']}"
        )
        run_id = answer.json["run_id"]
        assert answer.json["async"]["callback"]["state"] == "pending"
        run = finished(client, run_id)
        until(
            lambda: (
                client.simulate_get(f"/coderun/{run_id}/async").json["callback"]["state"]
                == "delivered"
            ),
            "the callback",
        )
        (call,) = receiver.received()
    assert (run["status"], run["result"], run["params"]) == ("completed", "got 1", {"x": "1"})
    record = client.simulate_get(f"/coderun/{run_id}/async").json
    assert (record["attempts"], record["redelivered"], record["callback"]["attempts"]) == (
        1,
        False,
        1,
    )
    assert verify(key, call.body, call.headers["x-codeactions-signature"])
    assert json.loads(call.body)["result"] == "got 1"


def test_a_sync_run_is_unchanged_by_async_false(api):
    client, _ = api
    code_id = create(client)
    answer = client.simulate_post(f"/run/{code_id}", params={"async": "false", "x": "2"})
    assert answer.status_code == 200 and answer.json["result"]["result"] == "got 2"


class Captured:
    """A submitter that keeps the jobs instead of running them: the test plays the worker."""

    via = "broker"

    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []

    def admit(self, project_uuid: str) -> None:
        return None

    def submit(self, job: dict[str, Any], ticket: Any) -> None:
        self.jobs.append(job)

    def close(self) -> None:
        pass


def test_a_finished_run_is_never_run_again_and_a_third_delivery_fails_it(api):
    client, services = api
    service, captured = services.async_runs, Captured()
    service.submitter = captured
    code_id = create(client)
    first = client.simulate_post(f"/run/{code_id}", params={"async": "1", "x": "a"}).json["run_id"]
    second = client.simulate_post(f"/run/{code_id}", params={"async": "1", "x": "b"}).json["run_id"]
    assert services.store.runs.get(first).status is RunStatus.QUEUED
    job_a, job_b = captured.jobs

    service.execute(job_a, worker="w1")
    service.execute(job_a, redelivered=True, worker="w2")  # its worker died before the ack
    record = services.store.async_runs.get(first)
    assert (record.attempts, record.worker, record.redelivered) == (1, "w1", False)
    assert services.store.runs.get(first).result == "got a"

    for worker in ("w1", "w2"):  # two workers died mid-run
        assert services.store.async_runs.claim(
            second, worker, redelivered=True, max_attempts=MAX_ATTEMPTS
        )
    service.execute(job_b, redelivered=True, worker="w3")
    run = services.store.runs.get(second)
    assert (run.status, run.result) == (RunStatus.FAILED, GAVE_UP)
    assert services.store.async_runs.get(second).attempts == MAX_ATTEMPTS


def test_a_redelivered_finished_run_only_completes_its_callback(api):
    """The worker stored the run's end and died before its callback was delivered: the next
    worker delivers the callback without running the code again."""
    client, services = api
    service, captured = services.async_runs, Captured()
    service.submitter = captured
    code_id = create(client)
    client.simulate_post("/projects/P/signing-key")
    with echo_server(lambda request: Answer(body={})) as receiver:
        run_id = client.simulate_post(
            f"/run/{code_id}",
            params={
                "async": "1",
                "x": "c",
                "callback_url": receiver.at("/cb"),
            },
        ).json["run_id"]
        (job,) = captured.jobs
        service.execute(job, worker="w1")
        services.store.async_runs.set_callback(run_id, CallbackState.PENDING, 0)  # as if it died
        service.execute(job, redelivered=True, worker="w2")
        calls = receiver.received()
    record = services.store.async_runs.get(run_id)
    assert (record.attempts, record.worker, record.callback_state) == (1, "w1", "delivered")
    assert len(calls) == 2 and calls[0].body == calls[1].body


def test_a_broker_that_does_not_take_the_run_is_503_and_the_run_is_stored_failed(tmp_path):
    settings = Settings.from_env(
        {
            "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path),
            "FLOWS_CODE_ACTIONS_RABBITMQ_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}//",
        }
    )
    with api_client(settings) as (client, _):
        code_id = create(client)
        answer = client.simulate_post(f"/run/{code_id}", params={"async": "true"})
        assert answer.status_code == 503 and "broker did not take" in answer.json["message"]
        (run,) = client.simulate_get("/coderun", params={"code_id": code_id}).json
    assert run["status"] == "failed" and run["result"].startswith("rejected: the broker")


def test_the_signature_is_hmac_sha256_of_the_exact_body():
    body = b'{"id":"r"}'
    expected = "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert signature("k", body) == expected
    assert verify("k", body, expected) and not verify("k", body + b" ", expected)
    assert not verify("other", body, expected)


def run_record() -> CodeRun:
    return CodeRun(id="r1", code_id="c1", status=RunStatus.COMPLETED, result="ok")


def test_failed_deliveries_are_retried_with_doubling_pauses():
    pauses: list[float] = []
    allow = flow_egress(Settings(flow_egress_allow=("127.0.0.1",)))  # loopback opened
    sender = CallbackSender(allow, attempts=4, backoff_seconds=0.5, sleep=pauses.append)
    with echo_server(lambda request: Answer(status=503, body={})) as receiver:
        delivery = sender.deliver(receiver.at("/x"), run_record(), "k")
        calls = receiver.received()
    assert (delivery.delivered, delivery.attempts) == (False, 4) and "HTTP 503" in delivery.error
    assert pauses == [0.5, 1.0, 2.0] and len(calls) == 4
    assert [c.headers["x-codeactions-delivery"] for c in calls] == ["1", "2", "3", "4"]


def test_an_address_the_egress_policy_denies_is_never_contacted():
    seen: list[Recorded] = []
    sender = CallbackSender(Egress(), attempts=3, sleep=lambda s: None)  # the built-in policy
    with echo_server(lambda request: seen.append(request) or Answer()) as receiver:
        delivery = sender.deliver(receiver.at("/x"), run_record(), "k")
    assert (delivery.delivered, delivery.attempts, seen) == (False, 1, [])
    assert "egress policy" in delivery.error


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://example.com/x", "http:// or https://"),
        ("http://exa mple.com/", "whitespace"),
        ("http://example.com/\r\nX-Injected: 1", "whitespace or control"),
        ("http://127.0.0.1:8080/x", "127.0.0.0/8"),
        ("http://[::1]/x", "egress policy"),
        ("http://[::ffff:10.0.0.1]/x", "egress policy"),
        ("http://example.com:99999/", "not a valid URL"),
        ("http://a:b@example.com/", "credentials"),
        ("http://" + "a" * 3000 + ".com/", "longer than"),
    ],
)
def test_bad_callback_urls_name_the_problem(url, fragment):
    with pytest.raises(InvalidInput, match=fragment):
        check_callback_url(url, Egress(resolve=lambda host, port: [host.strip("[]")]))


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://no-such-host.invalid/x", "does not resolve"),  # RFC 6761: never resolves
        ("http://localhost:8080/x", "127.0.0.0/8"),
    ],
)
def test_callback_hosts_are_resolved_and_checked(url, fragment):
    with pytest.raises(InvalidInput, match=fragment):
        check_callback_url(url, Egress())


def test_a_public_callback_url_passes():
    egress = Egress(resolve=lambda host, port: ["93.184.215.14"])
    assert (
        check_callback_url("https://hooks.example.com/x?t=1", egress)
        == "https://hooks.example.com/x?t=1"
    )


def test_runs_are_published_persistently_with_publisher_confirms(suite_env):
    require_service("RabbitMQ", suite_env.rabbitmq_url, 5672)
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        rabbitmq_url=suite_env.rabbitmq_url,
        async_run_exchange=f"test.runs.{tag}",
        async_run_queue=f"test.async-runs.{tag}",
    )
    publisher = PublishRuns(settings)
    try:
        publisher.publish({"run_id": "r1"})
        with producers[publisher._connection.get()].acquire(block=True, timeout=2) as producer:
            channel = producer.channel
            assert channel.connection.confirm_publish
            assert channel.basic_publish.__func__.__name__ == "basic_publish_confirm"
        with Connection(suite_env.rabbitmq_url) as connection:
            queue = run_queue(settings)(connection.default_channel)
            assert queue.durable and queue.exchange.durable
            message = queue.get(no_ack=True)
            assert message.properties["delivery_mode"] == 2 and message.payload == {"run_id": "r1"}
            queue.delete()
            queue.exchange.delete()
    finally:
        publisher.close()


def test_an_async_run_reads_its_projects_secret_and_keeps_it_masked(tmp_path):
    from codeactions_core.secret_box import new_key

    settings = Settings.from_env(
        {
            "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path),
            "FLOWS_CODE_ACTIONS_SECRETS_KEY": new_key(),
        }
    )
    value = "s3cr3t-value-for-async"
    source = (
        "def Run(engine):\n"
        "    token = engine.secrets.get('TOKEN')\n"
        "    engine.result.set(token[::-1] + ' ' + token)\n"
    )
    with api_client(settings) as (client, _):
        put = client.simulate_put("/projects/P/secrets/TOKEN", json={"value": value})
        assert put.status_code in (200, 201, 204), put.text
        created = client.simulate_post(
            "/code",
            params={"name": "a", "language": "python", "type": "endpoint", "project_uuid": "P"},
            body=source,
        )
        answer = client.simulate_post(
            f"/run/{created.json['id']}", params={"async": "yes", "echo": value}
        )
        assert answer.status_code == 202, answer.text
        run = finished(client, answer.json["run_id"])
    assert run["status"] == "completed", run
    assert run["result"] == value[::-1] + " ***"
    assert run["params"] == {"echo": "***"}
