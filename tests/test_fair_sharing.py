"""Fair sharing between projects through a real `codeactions serve`: one project's share of the
workers, rate limits on both public routes counted once per code whatever the id's spelling."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from codeactions_core.execution.pool import QueueFull, RunPool
from codeactions_core.testing.server import start_server

LIMIT = 3
SLEEPY = "import time\ndef Run(engine):\n    time.sleep(4)\n    engine.result.set('slept')\n"
TRIVIAL = 'def Run(engine):\n    engine.result.set("quick")\n'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(
        {
            "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path_factory.mktemp("data")),
            "FLOWS_CODE_ACTIONS_WORKER_POOL_SIZE": "4",  # a project's default share: 3 of them
            "FLOWS_CODE_ACTIONS_CODE_LIMITER_MAX_REQUESTS": str(LIMIT),
            "FLOWS_CODE_ACTIONS_METRICS_CODE_LABELS": "false",
        },
        tmp_path_factory.mktemp("logs"),
    )
    yield server
    server.stop()


def create(server, source: str, project: str) -> str:
    answer = requests.post(
        server.url("/code"),
        params={
            "name": "f",
            "language": "python",
            "type": "endpoint",
            "project_uuid": project,
            "timeout": 30,
        },
        data=source.encode(),
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def statuses(server, code_id: str) -> list[str]:
    return [
        run["status"]
        for run in requests.get(
            server.url("/coderun"), params={"code_id": code_id}, timeout=10
        ).json()
    ]


def test_a_busy_project_cannot_make_another_wait(server):
    sleepy = create(server, SLEEPY, "greedy")
    trivial = create(server, TRIVIAL, "modest")
    finished: list[int] = []

    def hog() -> None:
        try:
            finished.append(requests.post(server.url(f"/run/{sleepy}"), timeout=60).status_code)
        except requests.RequestException:
            finished.append(-1)  # the server stopped at the end of the module

    hogs = [threading.Thread(target=hog, daemon=True) for _ in range(5)]
    for thread in hogs:
        thread.start()
    deadline = time.monotonic() + 10
    while statuses(server, sleepy).count("started") < 3 or len(statuses(server, sleepy)) < 5:
        assert time.monotonic() < deadline, (
            f"the greedy runs did not all arrive: {statuses(server, sleepy)}"
        )
        time.sleep(0.05)  # polling the run records, not synchronisation
    assert sorted(statuses(server, sleepy)) == ["queued", "queued", "started", "started", "started"]

    asked = time.monotonic()
    answer = requests.get(server.url(f"/action/endpoint/{trivial}"), timeout=30)
    took = time.monotonic() - asked
    assert (answer.status_code, answer.text) == (200, "quick")
    assert took < 1.0, f"the other project's run waited {took:.1f} s behind the greedy one"
    assert finished == [] and all(thread.is_alive() for thread in hogs), (
        "the greedy runs were still running"
    )
    assert "completed" not in statuses(server, sleepy)


def test_endpoint_is_rate_limited_like_action_endpoint_on_one_counter(server):
    code = create(server, TRIVIAL, "limited")
    answers = [
        requests.get(server.url(f"/endpoint/{code}"), timeout=30),
        requests.get(server.url(f"/action/endpoint/{code}"), timeout=30),
        requests.get(server.url(f"/endpoint/{code}"), timeout=30),
        requests.get(server.url(f"/endpoint/{code}"), timeout=30),
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert answers[0].headers["X-RateLimit-Limit"] == str(LIMIT)
    assert (
        int(answers[-1].headers["Retry-After"]) >= 1 and "limited" in answers[-1].json()["message"]
    )


def test_every_spelling_of_an_id_counts_on_the_same_counter(server):
    code = create(server, TRIVIAL, "spelled")
    spellings = [code.upper(), "{" + code + "}", code.replace("-", ""), code]
    answers = [
        requests.get(server.url(f"/action/endpoint/{spelling}"), timeout=30)
        for spelling in spellings
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert [answer.text for answer in answers[:3]] == ["quick"] * 3
    runs = requests.get(server.url("/coderun"), params={"code_id": code.upper()}, timeout=10).json()
    assert len(runs) == 3 and {run["code_id"] for run in runs} == {code}


def test_metrics_can_leave_out_code_labels(server):
    code = create(server, TRIVIAL, "unlabelled")
    assert requests.get(server.url(f"/action/endpoint/{code}"), timeout=30).status_code == 200
    text = requests.get(server.url("/metrics"), timeout=10).text
    assert 'ca_run_count{code_id="",project_uuid=""}' in text
    assert code not in text and "unlabelled" not in text


def test_a_projects_queue_share_leaves_room_for_the_others():
    pool = RunPool(workers=2, queue_size=4, per_project=1, per_project_queue=2)
    running = pool.admit("a")
    waiting = [pool.admit("a"), pool.admit("a")]
    with pytest.raises(QueueFull, match="its share"):
        pool.admit("a")
    other = pool.admit("b")
    assert running.immediate and other.immediate and not any(ticket.immediate for ticket in waiting)
    assert pool.admit("b").immediate is False
    pool.run(other, lambda: None)
    assert not any(ticket.turn.is_set() for ticket in waiting), (
        "b's worker must not go to a, over its share"
    )
    pool.run(running, lambda: None)
    assert waiting[0].turn.is_set() and not waiting[1].turn.is_set()
