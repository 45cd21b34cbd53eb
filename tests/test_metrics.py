"""/metrics: the old service's names, pool metrics, HTTP metrics by route template,
and correct sums across the workers of a real server."""

from __future__ import annotations

import re

import pytest
import requests

from codeactions_core.execution.pool import QueueFull, RunPool
from codeactions_core.metrics import Metrics
from codeactions_core.testing.server import start_server
from tests.support.metrics import value
from tests.support.samples import PYTHON_ACTION

COMPAT_NAMES = (
    "ca_run_count",
    "ca_run_elapsed",
    "ca_code_created_count",
    "ca_code_updated_count",
    "workerpool_workers_total",
    "workerpool_workers_busy",
    "workerpool_queue_size",
    "workerpool_queue_capacity",
    "workerpool_tasks_submitted_total",
    "workerpool_tasks_completed_total",
    "workerpool_tasks_failed_total",
    "workerpool_tasks_rejected_total",
    "workerpool_tasks_timeout_total",
    "workerpool_queue_wait_seconds",
    "workerpool_task_duration_seconds",
)


def declared(text: str) -> set[str]:
    return set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE))


def test_every_compat_name_is_exposed_with_its_old_spelling(client, create_code):
    code = create_code()
    client.simulate_get(f"/action/endpoint/{code['id']}", params={"name": "x"})
    text = client.simulate_get("/metrics").text
    names = declared(text)
    for name in COMPAT_NAMES:
        stem = name.removesuffix("_total") if name.startswith("workerpool_tasks") else name
        assert stem in names or name in names, name
    assert "ca_run_count_total" not in text and not re.search(r"_created[ {]", text)
    assert "# TYPE ca_run_count counter" in text


def test_runs_are_counted_per_code_with_their_elapsed_time(client, create_code):
    code = create_code()
    for _ in range(3):
        assert (
            client.simulate_get(f"/action/endpoint/{code['id']}", params={"name": "x"}).status_code
            == 200
        )
    text = client.simulate_get("/metrics").text
    labels = {"project_uuid": "P1", "code_id": code["id"]}
    assert value(text, "ca_run_count", **labels) == 3
    assert value(text, "ca_run_elapsed_count", **labels) == 3
    assert value(text, "ca_run_elapsed_sum", **labels) > 0
    assert value(text, "workerpool_tasks_submitted_total") == 3
    assert value(text, "workerpool_tasks_completed_total") == 3
    assert value(text, "workerpool_task_duration_seconds_count") == 3
    assert value(text, "workerpool_workers_busy") == 0
    assert value(text, "workerpool_workers_total") == 4


def test_failures_and_timeouts_are_told_apart(client, create_code):
    failing = create_code("def Run(engine):\n    raise ValueError('no')\n")
    slow = create_code("import time\ndef Run(engine):\n    time.sleep(60)\n", timeout="1")
    assert client.simulate_get(f"/action/endpoint/{failing['id']}").status_code == 500
    assert client.simulate_get(f"/action/endpoint/{slow['id']}").status_code == 408
    text = client.simulate_get("/metrics").text
    assert value(text, "workerpool_tasks_failed_total") == 1
    assert value(text, "workerpool_tasks_timeout_total") == 1
    assert value(text, "workerpool_tasks_completed_total") == 0


def test_pool_gauges_and_rejections():
    metrics = Metrics()
    pool = RunPool(workers=1, queue_size=1, observer=metrics)
    first, second = pool.admit(), pool.admit()
    with pytest.raises(QueueFull):
        pool.admit()
    text = metrics.render()[0].decode()
    assert (value(text, "workerpool_workers_busy"), value(text, "workerpool_queue_size")) == (1, 1)
    assert value(text, "workerpool_queue_capacity") == 1
    assert value(text, "workerpool_tasks_rejected_total") == 1
    pool.run(first, lambda: None)
    pool.run(second, lambda: None)
    text = metrics.render()[0].decode()
    assert (value(text, "workerpool_workers_busy"), value(text, "workerpool_queue_size")) == (0, 0)
    assert value(text, "workerpool_queue_wait_seconds_count") == 2


def test_codes_created_and_updated_are_counted(client, create_code):
    code = create_code()
    for name in ("b", "c"):
        assert (
            client.simulate_patch(f"/code/{code['id']}", params={"name": name}).status_code == 200
        )
    assert (
        client.simulate_patch(f"/code/{code['id']}", params={"type": "nonsense"}).status_code == 400
    )
    text = client.simulate_get("/metrics").text
    labels = {"project_uuid": "P1", "code_id": code["id"]}
    assert value(text, "ca_code_created_count", **labels) == 1
    assert value(text, "ca_code_updated_count", **labels) == 2


def test_http_requests_are_labelled_by_route_template_never_by_raw_path(client, create_code):
    code = create_code()
    client.simulate_get(f"/code/{code['id']}")
    client.simulate_get("/code/not-a-real-id")
    client.simulate_get("/no/such/route/123")
    text = client.simulate_get("/metrics").text
    assert (
        value(text, "http_requests_total", method="GET", route="/code/{code_id}", status="200") == 1
    )
    assert (
        value(text, "http_requests_total", method="GET", route="/code/{code_id}", status="404") == 1
    )
    assert value(text, "http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert (
        value(text, "http_request_duration_seconds_count", method="GET", route="/code/{code_id}")
        == 2
    )
    assert code["id"] not in text.replace(f'code_id="{code["id"]}"', "")
    assert "not-a-real-id" not in text and "/no/such/route" not in text


def test_unusual_methods_share_one_label(client):
    client.simulate_request("PROPFIND", "/healthz")
    text = client.simulate_get("/metrics").text
    assert value(text, "http_requests_total", method="OTHER", route="/healthz", status="405") == 1
    assert 'method="PROPFIND"' not in text


@pytest.mark.e2e
def test_several_workers_add_up_and_a_restart_starts_from_zero(tmp_path):
    settings = {"FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path / "data")}
    server = start_server(settings, tmp_path, workers=3)
    try:
        query = {"name": "m", "language": "python", "type": "endpoint", "project_uuid": "P"}
        code = requests.post(
            server.url("/code"), params=query, data=PYTHON_ACTION, timeout=10
        ).json()
        for _ in range(30):  # a new connection each: gunicorn spreads them over its workers
            assert (
                requests.get(server.url(f"/action/endpoint/{code['id']}"), timeout=30).status_code
                == 200
            )
        scrapes = [requests.get(server.url("/metrics"), timeout=10).text for _ in range(6)]
        labels = {"project_uuid": "P", "code_id": code["id"]}
        assert {value(text, "ca_run_count", **labels) for text in scrapes} == {30}
        assert {value(text, "ca_code_created_count", **labels) for text in scrapes} == {1}
        assert {value(text, "workerpool_workers_total") for text in scrapes} == {3 * 4}
        files = list((tmp_path / "data" / "metrics").glob("*.db"))
        assert len({f.name.rsplit("_", 1)[-1] for f in files}) >= 2, "several workers wrote values"
    finally:
        assert server.stop() == 0
    server = start_server(settings, tmp_path, workers=1)
    try:
        text = requests.get(server.url("/metrics"), timeout=10).text
        assert value(text, "ca_run_count", project_uuid="P", code_id=code["id"]) == 0
    finally:
        server.stop()
