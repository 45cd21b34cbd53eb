"""``/coderun`` and ``/codelog``: shapes, filters and pagination."""

from __future__ import annotations

from datetime import timedelta

import pytest

from codeactions_core.model import CodeLog, LogType, RunStatus, rfc3339, utcnow
from codeactions_core.store import NewRun

RUN_KEYS = {
    "id",
    "code_id",
    "status",
    "result",
    "extra",
    "params",
    "body",
    "headers",
    "created_at",
    "updated_at",
}
LOG_KEYS = {"id", "run_id", "code_id", "type", "content", "created_at", "updated_at"}


@pytest.fixture
def run(services, create_code):
    code = create_code()
    run = services.store.runs.create(
        NewRun(code_id=code["id"], params={"name": "ana"}, body="b", headers={"User-Agent": ["t"]})
    )
    services.store.runs.update(
        run.id,
        status=RunStatus.COMPLETED,
        result='{"hi": "ana"}',
        extra={"status_code": 200, "content_type": "json"},
    )
    return services.store.runs.get(run.id)


def test_get_run(client, run):
    result = client.simulate_get(f"/coderun/{run.id}")
    assert result.status_code == 200
    assert set(result.json) == RUN_KEYS
    assert result.json["status"] == "completed"
    assert result.json["extra"] == {"status_code": 200, "content_type": "json"}
    assert result.json["headers"] == {"User-Agent": ["t"]}
    assert result.json["params"] == {"name": "ana"}


def test_list_runs_with_after_and_before(client, services, run):
    later = services.store.runs.create(NewRun(code_id=run.code_id))
    listed = client.simulate_get("/coderun", params={"code_id": run.code_id}).json
    assert [r["id"] for r in listed] == [later.id, run.id]
    # bounds are inclusive, as they were in the old service
    after = client.simulate_get(
        "/coderun", params={"code_id": run.code_id, "after": rfc3339(later.created_at)}
    ).json
    assert [r["id"] for r in after] == [later.id]
    before = client.simulate_get(
        "/coderun", params={"code_id": run.code_id, "before": rfc3339(run.created_at)}
    ).json
    assert [r["id"] for r in before] == [run.id]
    tomorrow = (utcnow() + timedelta(days=1)).date().isoformat()
    assert (
        client.simulate_get("/coderun", params={"code_id": run.code_id, "after": tomorrow}).json
        == []
    )
    assert (
        len(
            client.simulate_get(
                "/coderun", params={"code_id": run.code_id, "before": tomorrow}
            ).json
        )
        == 2
    )


def add_logs(services, run, count: int) -> None:
    services.store.logs.add_many(
        [
            CodeLog(
                id="", run_id=run.id, code_id=run.code_id, type=LogType.INFO, content=f"line {i}"
            )
            for i in range(count)
        ]
    )


def test_logs_of_a_run_paginate_by_twenty(client, services, run):
    add_logs(services, run, 45)
    pages = [
        client.simulate_get("/codelog", params={"run_id": run.id, "page": str(n)}).json
        for n in (1, 2, 3, 4)
    ]
    assert [(p["total"], p["page"], p["last_page"], len(p["data"])) for p in pages] == [
        (45, 1, 3, 20),
        (45, 2, 3, 20),
        (45, 3, 3, 5),
        (45, 4, 3, 0),
    ]
    contents = [log["content"] for page in pages for log in page["data"]]
    assert contents == [f"line {i}" for i in range(45)]
    assert set(pages[0]["data"][0]) == LOG_KEYS
    default = client.simulate_get("/codelog", params={"run_id": run.id}).json
    assert default["page"] == 1 and default["data"] == pages[0]["data"]


def test_logs_by_code_and_single_log(client, services, run):
    add_logs(services, run, 3)
    page = client.simulate_get("/codelog", params={"code_id": run.code_id}).json
    assert page["total"] == 3 and page["last_page"] == 1
    one = page["data"][0]
    assert client.simulate_get(f"/codelog/{one['id']}").json == one


def test_no_logs_is_an_empty_first_page(client, run):
    page = client.simulate_get("/codelog", params={"run_id": run.id}).json
    assert page == {"data": [], "total": 0, "page": 1, "last_page": 0}
