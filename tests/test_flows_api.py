"""/flows through the API, executions driven by the server itself (no broker): versioning,
validation, executions with real HTTP and code steps, waits, cancel, failures."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import falcon.testing
import pytest

from codeactions_core.services.schema import ensure_schema_ready
from codeactions_core.settings import Settings
from codeactions_core.testing.server import free_port
from codeactions_core.web.app import create_app
from codeactions_core.wiring import Services, build_services
from tests.support.echo import Answer, EchoServer, echo_server
from tests.support.metrics import value

DEADLINE = 30.0
PROJECT = "P1"


@pytest.fixture(scope="module")
def services(tmp_path_factory) -> Iterator[Services]:
    settings = Settings(
        data_dir=str(tmp_path_factory.mktemp("data")),
        flow_poll_seconds=0.05,
        flow_egress_allow=("127.0.0.1",),
    )
    services = build_services(settings)
    ensure_schema_ready(services.store)
    services.start()
    yield services
    services.close()


@pytest.fixture(scope="module")
def client(services) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(services=services))


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    with echo_server() as server:
        yield server


def create_flow(client, name: str = "welcome", project: str = PROJECT) -> str:
    answer = client.simulate_post(
        "/flows", json={"name": name, "project_uuid": project, "description": "d"}
    )
    assert answer.status_code == 201, answer.text
    return answer.json["id"]


def add_version(client, flow_id: str, steps: list, notes: str = "") -> dict:
    answer = client.simulate_post(
        f"/flows/{flow_id}/versions", json={"steps": steps, "change_notes": notes}
    )
    assert answer.status_code == 201, answer.text
    return answer.json


def published_flow(client, steps: list) -> str:
    flow_id = create_flow(client)
    number = add_version(client, flow_id, steps)["version_number"]
    assert client.simulate_post(f"/flows/{flow_id}/versions/{number}/publish").status_code == 200
    return flow_id


def execute(client, flow_id: str, wait: bool = True, **body) -> falcon.testing.Result:
    return client.simulate_post(
        f"/flows/{flow_id}/executions", json=body, params={"wait": "true"} if wait else None
    )


def settled(
    client, flow_id: str, execution_id: str, statuses=("completed", "failed", "cancelled")
) -> dict:
    """The execution once its status is one of ``statuses`` (polling with a deadline)."""
    give_up = time.monotonic() + DEADLINE
    while True:
        execution = client.simulate_get(f"/flows/{flow_id}/executions/{execution_id}").json
        if execution["status"] in statuses or time.monotonic() > give_up:
            return execution
        time.sleep(0.02)  # polling the store, not synchronisation


def http_step(step_id: str, url: str, **config) -> dict:
    return {
        "id": step_id,
        "type": "http_call",
        "name": step_id,
        "config": {"method": "POST", "url": url, **config},
    }


# -- executions ---------------------------------------------------------------------------


def test_a_published_flow_runs_its_steps_with_placeholders(client, services, echo):
    code = client.simulate_post(
        "/code",
        params={"name": "greet", "language": "python", "type": "flow", "project_uuid": PROJECT},
        body=(
            "def Run(engine):\n"
            '    engine.result.set({"hello": engine.params.get("who")}, content_type="json")\n'
        ),
    )
    assert code.status_code == 201, code.text
    steps = [
        http_step("call", f"{echo.url}/leads/{{{{leadId}}}}", body={"name": "{{variables.name}}"}),
        {
            "id": "greet",
            "type": "code",
            "name": "greet",
            "config": {
                "code_id": code.json["id"],
                "params": {"who": "{{steps.call.result.body.path}}"},
            },
        },
        http_step(
            "report", f"{echo.url}/report", body="{{steps.greet.result.hello}} for {{leadId}}"
        ),
    ]
    flow_id = published_flow(client, steps)
    answer = execute(client, flow_id, lead_id=42, variables={"name": "Ana"})
    assert answer.status_code == 200, answer.text
    execution = answer.json
    assert execution["status"] == "completed", execution
    assert execution["lead_id"] == "42" and execution["error_message"] == ""
    assert execution["result"]["greet"] == {"hello": "/leads/42"}
    requests = [r for r in echo.received() if r.path in ("/leads/42", "/report")]
    assert requests[0].json() == {"name": "Ana"}
    assert requests[1].body.decode() == "/leads/42 for 42"  # a text body is sent as it is
    records = execution["logs"]
    assert [(r["step_id"], r["status"], r["attempt"]) for r in records] == [
        ("call", "completed", 1),
        ("greet", "completed", 1),
        ("report", "completed", 1),
    ]
    assert all(r["started_at"] and r["finished_at"] and r["duration_ms"] >= 0 for r in records)
    assert any("POST" in line["message"] for line in records[0]["logs"])
    assert execution["started_at"] and execution["finished_at"]
    runs = client.simulate_get("/coderun", params={"code_id": code.json["id"]}).json
    assert len(runs) == 1 and runs[0]["params"] == {"who": "/leads/42"}


def test_without_wait_the_answer_is_202_and_the_execution_finishes(client, echo):
    flow_id = published_flow(client, [http_step("one", f"{echo.url}/one")])
    answer = execute(client, flow_id, wait=False)
    assert answer.status_code == 202
    assert answer.headers["Location"] == f"/flows/{flow_id}/executions/{answer.json['id']}"
    assert settled(client, flow_id, answer.json["id"])["status"] == "completed"


def test_a_failing_step_fails_the_execution_unless_it_may(client, echo):
    failing = http_step("broken", f"{echo.url}/missing", method="GET")
    with echo_server(lambda request: Answer(status=404, body={"error": "nope"})) as missing:
        failing["config"]["url"] = f"{missing.url}/missing"
        flow_id = published_flow(client, [failing, http_step("after", f"{echo.url}/after")])
        execution = execute(client, flow_id).json
        assert execution["status"] == "failed"
        assert execution["error_message"].startswith("step 'broken' (http_call) failed:")
        assert "404" in execution["error_message"]
        assert [r["step_id"] for r in execution["logs"]] == ["broken"]

        tolerant = published_flow(
            client,
            [{**failing, "continue_on_error": True}, http_step("after", f"{echo.url}/after")],
        )
        execution = execute(client, tolerant).json
    assert execution["status"] == "completed"
    assert [(r["step_id"], r["status"]) for r in execution["logs"]] == [
        ("broken", "failed"),
        ("after", "completed"),
    ]


def test_an_unknown_placeholder_fails_the_step_clearly(client, echo):
    flow_id = published_flow(client, [http_step("one", f"{echo.url}/{{{{variables.missing}}}}")])
    execution = execute(client, flow_id, variables={}).json
    assert execution["status"] == "failed"
    assert "variables.missing" in execution["error_message"]


def test_a_short_wait_resumes_without_holding_a_thread(client, services, echo):
    flow_id = published_flow(
        client,
        [
            {
                "id": "pause",
                "type": "wait",
                "name": "pause",
                "config": {"seconds": 0.3, "reason": "let it settle"},
            },
            http_step("after", f"{echo.url}/after-wait"),
        ],
    )
    started = execute(client, flow_id, wait=False).json
    waiting = settled(client, flow_id, started["id"], statuses=("running",))
    execution = settled(client, flow_id, started["id"])
    assert execution["status"] == "completed", execution
    assert execution["result"]["pause"] == {"waited_seconds": 0.3, "reason": "let it settle"}
    assert [r["status"] for r in execution["logs"]] == ["completed", "completed"]
    assert waiting["status"] == "running"


def test_waits_hold_no_thread(client, services):
    flow_id = published_flow(
        client, [{"id": "long", "type": "wait", "name": "long", "config": {"seconds": 3600}}]
    )
    threads = services.settings.flow_worker_threads
    ids = [execute(client, flow_id, wait=False).json["id"] for _ in range(threads * 3)]
    executions = [settled(client, flow_id, i, statuses=("running",)) for i in ids]
    give_up = time.monotonic() + DEADLINE
    while (
        not all(e["logs"] and e["logs"][-1]["status"] == "waiting" for e in executions)
        and time.monotonic() < give_up
    ):
        time.sleep(0.02)  # polling the store
        executions = [client.simulate_get(f"/flows/{flow_id}/executions/{i}").json for i in ids]
    assert all(e["logs"][-1]["status"] == "waiting" and e["resume_at"] for e in executions)
    for execution_id in ids:
        cancelled = client.simulate_post(f"/flows/{flow_id}/executions/{execution_id}/cancel").json
        assert cancelled["status"] == "cancelled" and cancelled["finished_at"]


def waiting(client, flow_id: str, execution_id: str) -> dict:
    """The execution once its last step record is waiting (polling with a deadline)."""
    give_up = time.monotonic() + DEADLINE
    while True:
        execution = client.simulate_get(f"/flows/{flow_id}/executions/{execution_id}").json
        if (
            execution["logs"] and execution["logs"][-1]["status"] == "waiting"
        ) or time.monotonic() > give_up:
            return execution
        time.sleep(0.02)  # polling the store, not synchronisation


def test_cancel_is_final_and_executions_are_never_deleted(client):
    flow_id = published_flow(
        client, [{"id": "long", "type": "wait", "name": "long", "config": {"seconds": 3600}}]
    )
    execution_id = execute(client, flow_id, wait=False).json["id"]
    waiting(client, flow_id, execution_id)
    first = client.simulate_post(f"/flows/{flow_id}/executions/{execution_id}/cancel")
    assert first.status_code == 200
    again = client.simulate_post(f"/flows/{flow_id}/executions/{execution_id}/cancel")
    assert first.json["status"] == again.json["status"] == "cancelled"
    assert again.json["finished_at"] == first.json["finished_at"]
    deleted = client.simulate_delete(f"/flows/{flow_id}/executions/{execution_id}")
    assert deleted.status_code == 405
    assert (
        client.simulate_get(f"/flows/{flow_id}/executions/{execution_id}").json["status"]
        == "cancelled"
    )


def test_cancel_during_a_step_takes_effect_right_after_it(client):
    release = threading.Event()
    with echo_server(lambda request: Answer(hold=release)) as slow:
        flow_id = published_flow(
            client,
            [
                http_step("slow", f"{slow.url}/slow"),
                {"id": "long", "type": "wait", "name": "long", "config": {"seconds": 3600}},
            ],
        )
        execution_id = execute(client, flow_id, wait=False).json["id"]
        give_up = time.monotonic() + DEADLINE
        while not slow.received() and time.monotonic() < give_up:
            time.sleep(0.02)  # polling for the step to begin
        asked = client.simulate_post(f"/flows/{flow_id}/executions/{execution_id}/cancel")
        assert asked.status_code == 202
        assert (asked.json["status"], asked.json["cancel_requested"]) == ("running", True)
        release.set()
        done = settled(client, flow_id, execution_id)
    assert done["status"] == "cancelled" and done["error_message"] == "cancelled"
    assert [(r["step_id"], r["status"]) for r in done["logs"]] == [("slow", "completed")]


def test_executions_are_listed_with_filters(client, echo):
    flow_id = published_flow(client, [http_step("one", f"{echo.url}/x")])
    for lead in (1, 2, 2):
        execute(client, flow_id, lead_id=lead)
    listed = client.simulate_get(f"/flows/{flow_id}/executions").json
    assert len(listed) == 3 and listed[0]["created_at"] >= listed[-1]["created_at"]
    by_lead = client.simulate_get(f"/flows/{flow_id}/executions", params={"lead_id": "2"}).json
    assert [e["lead_id"] for e in by_lead] == ["2", "2"]
    assert (
        client.simulate_get(f"/flows/{flow_id}/executions", params={"status": "failed"}).json == []
    )
    bad = client.simulate_get(f"/flows/{flow_id}/executions", params={"status": "nope"})
    assert bad.status_code == 400 and "status must be one of" in bad.json["message"]


def test_steps_and_finished_executions_are_counted_in_metrics(client, echo):
    unreachable = f"http://127.0.0.1:{free_port()}/nobody"
    flow_id = published_flow(
        client, [http_step("ok", f"{echo.url}/ok"), http_step("down", unreachable)]
    )

    def counts() -> tuple[float, ...]:
        text = client.simulate_get("/metrics").text
        return (
            value(text, "ca_flow_steps_total", type="http_call", status="completed"),
            value(text, "ca_flow_steps_total", type="http_call", status="failed"),
            value(text, "ca_flow_step_duration_seconds_count", type="http_call"),
            value(text, "ca_flow_executions_finished_total", status="failed"),
        )

    before = counts()
    assert execute(client, flow_id).json["status"] == "failed"
    assert [after - was for after, was in zip(counts(), before)] == [1, 1, 2, 1]


# -- versions -----------------------------------------------------------------------------


def test_versions_from_draft_to_published_to_archived_and_back(client, echo):
    flow_id = create_flow(client)
    v1 = add_version(client, flow_id, [http_step("a", f"{echo.url}/a")], "first")
    assert (v1["version_number"], v1["status"], v1["published_at"]) == (1, "draft", None)
    edited = client.simulate_patch(
        f"/flows/{flow_id}/versions/1", json={"steps": [http_step("a", f"{echo.url}/a2")]}
    )
    assert edited.status_code == 200 and edited.json["steps"][0]["config"]["url"].endswith("/a2")
    assert (
        client.simulate_post(f"/flows/{flow_id}/versions/1/publish").json["status"] == "published"
    )
    frozen = client.simulate_patch(f"/flows/{flow_id}/versions/1", json={"change_notes": "sneaky"})
    assert frozen.status_code == 409 and "published" in frozen.json["message"]

    add_version(
        client,
        flow_id,
        [http_step("a", f"{echo.url}/a3"), http_step("b", f"{echo.url}/b")],
        "second",
    )
    assert client.simulate_post(f"/flows/{flow_id}/versions/2/publish").status_code == 200
    statuses = {
        v["version_number"]: v["status"]
        for v in client.simulate_get(f"/flows/{flow_id}/versions").json
    }
    assert statuses == {1: "archived", 2: "published"}
    assert client.simulate_post(f"/flows/{flow_id}/versions/2/publish").status_code == 409
    assert (
        client.simulate_patch(
            f"/flows/{flow_id}/versions/1", json={"change_notes": "x"}
        ).status_code
        == 409
    )

    rolled = client.simulate_post(f"/flows/{flow_id}/versions/1/rollback")
    assert rolled.status_code == 200 and rolled.json["status"] == "published"
    listed = client.simulate_get(f"/flows/{flow_id}/versions").json
    assert [(v["version_number"], v["status"]) for v in listed] == [
        (2, "archived"),
        (1, "published"),
    ]
    assert client.simulate_post(f"/flows/{flow_id}/versions/1/rollback").status_code == 409
    execution = execute(client, flow_id).json
    assert execution["context"]["version_number"] == 1
    older = execute(client, flow_id, version=2).json
    assert older["status"] == "completed" and older["context"]["version_number"] == 2


def test_diff_of_two_versions(client):
    flow_id = create_flow(client)
    wait = {"id": "w", "type": "wait", "name": "w", "config": {"seconds": 1}}
    add_version(client, flow_id, [wait, http_step("gone", "http://127.0.0.1:9/x")])
    changed = {**wait, "config": {"seconds": 5}}
    add_version(client, flow_id, [changed, http_step("new", "http://127.0.0.1:9/y")])
    diff = client.simulate_get(f"/flows/{flow_id}/diff", params={"from": "1", "to": "2"}).json
    assert [s["id"] for s in diff["added"]] == ["new"] and [s["id"] for s in diff["removed"]] == [
        "gone"
    ]
    assert diff["changed"] == [
        {"id": "w", "changes": {"config": {"before": {"seconds": 1}, "after": {"seconds": 5}}}}
    ]
    assert (
        client.simulate_get(f"/flows/{flow_id}/diff", params={"from": "1", "to": "9"}).status_code
        == 404
    )
    assert (
        client.simulate_get(f"/flows/{flow_id}/diff", params={"from": "x", "to": "1"}).status_code
        == 400
    )


def test_invalid_steps_are_refused_listing_every_problem(client):
    flow_id = create_flow(client)
    answer = client.simulate_post(
        f"/flows/{flow_id}/versions",
        json={
            "steps": [
                {"id": "a", "type": "teleport", "config": {}},
                {"id": "a", "type": "wait", "config": {"seconds": 7200}},
                {
                    "id": "c",
                    "type": "http_call",
                    "config": {"method": "GET", "url": "{{steps.z.result}}"},
                },
            ]
        },
    )
    assert answer.status_code == 400
    message = answer.json["message"]
    for expected in ("teleport", "duplicate", "3600", "z"):
        assert expected in message, (expected, message)
    assert client.simulate_get(f"/flows/{flow_id}/versions").json == []


# -- flows --------------------------------------------------------------------------------


def test_flows_are_created_listed_and_deactivated(client):
    flow_id = create_flow(client, name="listed", project="P-list")
    other = create_flow(client, name="other", project="P-list")
    listed = client.simulate_get("/flows", params={"project_uuid": "P-list"}).json
    assert [f["id"] for f in listed] == [other, flow_id]
    off = client.simulate_patch(f"/flows/{flow_id}", json={"is_active": False})
    assert off.status_code == 200 and off.json["is_active"] is False
    active = client.simulate_get("/flows", params={"project_uuid": "P-list", "active": "true"}).json
    assert [f["id"] for f in active] == [other]
    add_version(client, flow_id, [{"id": "w", "type": "wait", "config": {"seconds": 1}}])
    client.simulate_post(f"/flows/{flow_id}/versions/1/publish")
    refused = execute(client, flow_id)
    assert refused.status_code == 409 and "inactive" in refused.json["message"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"project_uuid": "P"}, "name is required"),
        ({"name": "x"}, "project_uuid is required"),
        ({"name": 5, "project_uuid": "P"}, "name must be a string"),
    ],
)
def test_bad_flow_input_is_400(client, body, expected):
    answer = client.simulate_post("/flows", json=body)
    assert (answer.status_code, answer.json["message"]) == (400, expected)


def test_unknown_ids_are_404_and_drafts_do_not_run(client):
    assert client.simulate_get("/flows/not-a-uuid").status_code == 404
    assert (
        client.simulate_get("/flows/00000000-0000-0000-0000-000000000000/versions").status_code
        == 404
    )
    flow_id = create_flow(client)
    no_version = execute(client, flow_id)
    assert no_version.status_code == 409 and "no published version" in no_version.json["message"]
    add_version(client, flow_id, [{"id": "w", "type": "wait", "config": {"seconds": 1}}])
    draft = execute(client, flow_id, version=1)
    assert draft.status_code == 409 and "draft" in draft.json["message"]
    assert client.simulate_get(f"/flows/{flow_id}/executions/nope").status_code == 404
    assert client.simulate_get(f"/flows/{flow_id}/versions/0").status_code == 400
