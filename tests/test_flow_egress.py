"""Flows cannot be used for SSRF: the http_call and tabular steps obey the egress policy, checked
after name resolution on the address they then connect to, on every redirect. Denials aim at
loopback listeners that must never see a connection; private addresses come from the runners'
injected resolver, never from a real DNS server, and no packet leaves loopback."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from codeactions_core.egress import EgressPolicy
from codeactions_core.flows.runners import Egress, HttpCallRunner, TabularRunner
from codeactions_core.flows.runners.common import EgressRefused
from codeactions_core.flows.steps import StepContext
from codeactions_core.testing.server import start_server
from tests.support.echo import Answer, echo_server


class Listener:
    """A loopback port that accepts nothing: whether any connection reached it is in its backlog."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def url(self, host: str = "127.0.0.1", path: str = "/") -> str:
        return f"http://{host}:{self.port}{path}"

    def connections(self) -> int:
        """How many connections reached it (each completed handshake waits in the backlog)."""
        count = 0
        while True:
            try:
                connection, _ = self.sock.accept()
            except BlockingIOError:
                return count
            connection.close()
            count += 1


@contextmanager
def listener() -> Iterator[Listener]:
    target = Listener()
    try:
        yield target
    finally:
        target.sock.close()


def context() -> StepContext:
    return StepContext(execution_id="e", flow_id="f", project_uuid="P", step_id="s", lead_id="42")


def call(runner: HttpCallRunner, url: str, **config) -> dict:
    return runner.execute({"url": url, **config}, context(), lambda *args: None).result


def resolving(table: dict[str, list[str]], asked: list[str] | None = None):
    """A resolver answering from ``table`` (the injected seam: no DNS server is asked)."""

    def resolve(host: str, port: int) -> list[str]:
        if asked is not None:
            asked.append(host)
        return table[host]

    return resolve


def test_http_call_refuses_loopback_by_default():
    with listener() as target:
        with pytest.raises(EgressRefused, match=r"127\.0\.0\.0/8.*FLOW_EGRESS_ALLOW"):
            call(HttpCallRunner(), target.url(), retry={"max_attempts": 3, "delay": 0})
        assert target.connections() == 0


def test_a_name_resolving_to_loopback_is_refused():
    with listener() as target:
        with pytest.raises(EgressRefused, match="localhost"):
            call(HttpCallRunner(), target.url("localhost"))
        assert target.connections() == 0


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "0.0.0.0",
    ],
)
def test_a_name_resolving_to_an_inside_address_is_refused_before_connecting(address):
    egress = Egress(EgressPolicy(), resolve=resolving({"crm.example": [address]}))
    with pytest.raises(EgressRefused, match="egress policy"):
        call(HttpCallRunner(egress=egress), "http://crm.example:8080/leads")


def test_tabular_refuses_an_inside_webhook():
    with listener() as target:
        with pytest.raises(EgressRefused, match="egress policy"):
            TabularRunner().execute(
                {
                    "webhook_url": target.url(path="/rest/1/token/"),
                    "field": "STATUS_ID",
                    "value": "X",
                },
                context(),
                lambda *args: None,
            )
        assert target.connections() == 0


def test_an_allowed_name_connects_to_the_address_that_was_checked():
    with echo_server(lambda request: Answer(body={"host": request.headers["host"]})) as echo:
        port = int(echo.url.rsplit(":", 1)[1])
        asked: list[str] = []
        egress = Egress(
            EgressPolicy.from_terms([f"127.0.0.1:{port}"]),
            resolve=resolving({"api.example": ["127.0.0.1"]}, asked),
        )
        result = call(HttpCallRunner(egress=egress), f"http://api.example:{port}/x")
    assert result["body"] == {"host": f"api.example:{port}"}, "the Host header keeps the name"
    assert asked == ["api.example"], (
        "one resolution per connection: the address checked is the one used"
    )


def test_only_the_allowed_addresses_of_a_name_are_used():
    with echo_server() as echo:
        port = int(echo.url.rsplit(":", 1)[1])
        egress = Egress(
            EgressPolicy.from_terms([f"127.0.0.1:{port}"]),
            resolve=resolving({"mixed.example": ["127.0.0.2", "127.0.0.1"]}),
        )
        assert call(HttpCallRunner(egress=egress), f"http://mixed.example:{port}/")["status"] == 200
        assert len(echo.received()) == 1


def test_every_redirect_is_checked_again():
    with listener() as inside:
        with echo_server(
            lambda request: Answer(status=302, headers={"Location": inside.url(path="/secret")})
        ) as hop:
            port = int(hop.url.rsplit(":", 1)[1])
            runner = HttpCallRunner(egress=Egress(EgressPolicy.from_terms([f"127.0.0.1:{port}"])))
            with pytest.raises(EgressRefused, match=f"127.0.0.1:{inside.port}"):
                call(runner, hop.at("/start"))
            assert [request.path for request in hop.received()] == ["/start"]
        assert inside.connections() == 0


# --- through a real server --------------------------------------------------------------------


def test_a_flow_cannot_reach_the_inside_through_a_real_server(tmp_path):
    with listener() as target:
        server = start_server({"FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path / "data")}, tmp_path)
        try:
            flow = requests.post(
                server.url("/flows"), json={"name": "ssrf", "project_uuid": "P"}, timeout=10
            ).json()
            steps = [
                {
                    "id": "peek",
                    "type": "http_call",
                    "continue_on_error": True,
                    "config": {"url": target.url(path="/admin")},
                },
                {
                    "id": "poke",
                    "type": "tabular",
                    "continue_on_error": True,
                    "config": {
                        "webhook_url": target.url("localhost", "/rest/1/t/"),
                        "field": "F",
                        "value": 1,
                    },
                },
            ]
            assert (
                requests.post(
                    server.url(f"/flows/{flow['id']}/versions"), json={"steps": steps}, timeout=10
                ).status_code
                == 201
            )
            assert (
                requests.post(
                    server.url(f"/flows/{flow['id']}/versions/1/publish"), timeout=10
                ).status_code
                == 200
            )
            execution = requests.post(
                server.url(f"/flows/{flow['id']}/executions"),
                params={"wait": "true"},
                json={"lead_id": 7},
                timeout=60,
            ).json()
            deadline = time.monotonic() + 30
            while execution["status"] not in ("completed", "failed"):
                assert time.monotonic() < deadline, execution
                time.sleep(0.05)  # polling the execution record, not synchronisation
                execution = requests.get(
                    server.url(f"/flows/{flow['id']}/executions/{execution['id']}"), timeout=10
                ).json()
        finally:
            server.stop()
        records = {record["step_id"]: record for record in execution["logs"]}
        assert [records[step]["status"] for step in ("peek", "poke")] == ["failed", "failed"]
        for step in ("peek", "poke"):
            assert "egress policy" in str(records[step]), records[step]
        assert target.connections() == 0
