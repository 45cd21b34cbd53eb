"""A JavaScript endpoint code through the HTTP API (Falcon's test client, real runs)."""

from __future__ import annotations

from collections.abc import Iterator

import falcon.testing
import pytest
from codeactions_javascript.settings import NodeSettings

from codeactions_core.settings import Settings
from codeactions_core.testing.api import api_client

SOURCE = """
exports.Run = async function (engine) {
  engine.log.info("called");
  const answer = { hi: engine.params.get("name"), agent: engine.header.get("user-agent") };
  engine.result.set(answer, 201, "json");
};
"""


def client_for(settings: Settings) -> Iterator[falcon.testing.TestClient]:
    with api_client(settings) as (client, _):
        yield client


@pytest.fixture
def client(tmp_path) -> Iterator[falcon.testing.TestClient]:
    yield from client_for(Settings(data_dir=str(tmp_path)))


@pytest.fixture
def client_without_node(tmp_path) -> Iterator[falcon.testing.TestClient]:
    yield from client_for(
        Settings.of(NodeSettings, data_dir=str(tmp_path), node_binary="codeactions-no-such-node")
    )


def create_code(client: falcon.testing.TestClient, source: str) -> falcon.testing.Result:
    query = {"name": "greeter", "language": "javascript", "type": "endpoint", "project_uuid": "P1"}
    return client.simulate_post("/code", params=query, body=source)


def test_an_endpoint_code_answers_as_it_says(client):
    created = create_code(client, SOURCE)
    assert created.status_code == 201, created.text
    assert created.json["language"] == "javascript"
    answer = client.simulate_get(
        f"/action/endpoint/{created.json['id']}",
        params={"name": "x"},
        headers={"User-Agent": "falcon-test"},
    )
    assert answer.status_code == 201
    assert answer.headers["content-type"] == "application/json; charset=UTF-8"
    assert answer.json == {"hi": "x", "agent": "falcon-test"}


def test_a_failing_code_answers_500_with_its_stack_trace(client):
    created = create_code(client, 'exports.Run = () => { throw new Error("broken"); };')
    answer = client.simulate_get(f"/action/endpoint/{created.json['id']}")
    assert answer.status_code == 500
    assert answer.json["message"].startswith("Error: broken\n    at exports.Run (")


def test_without_node_creating_a_javascript_code_answers_503(client_without_node):
    answer = create_code(client_without_node, SOURCE)
    assert answer.status_code == 503
    assert answer.json["message"] == (
        "the javascript runtime is unavailable: node not found: install Node.js or set "
        "FLOWS_CODE_ACTIONS_NODE_BINARY (looked for 'codeactions-no-such-node')"
    )
