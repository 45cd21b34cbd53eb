"""A process's run leases on the embedded store: renewed, expired ones failed, its own
failed on demand (a drain that ran out of time), and its runs carry it as owner."""

from __future__ import annotations

from datetime import timedelta

from codeactions_core.model import CodeType, NewCode, RunStatus, utcnow
from codeactions_core.services.run_leases import LEASE_EXPIRED, SHUTTING_DOWN, RunLeases
from codeactions_core.store import NewRun


def code_of(services) -> str:
    return services.store.codes.create(
        NewCode(
            name="c",
            type=CodeType.ENDPOINT,
            source="x",
            language="python",
            project_uuid="P",
            timeout=10,
        )
    ).id


def test_a_tick_renews_this_process_and_fails_the_dead(services):
    runs = services.store.runs
    code_id = code_of(services)
    clock = {"now": utcnow()}
    leases = RunLeases(runs, timedelta(seconds=15), owner="me", clock=lambda: clock["now"])
    mine = runs.create(
        NewRun(
            code_id=code_id, status=RunStatus.STARTED, owner="me", lease_expires_at=leases.until()
        )
    )
    dead = runs.create(
        NewRun(
            code_id=code_id, status=RunStatus.STARTED, owner="dead", lease_expires_at=leases.until()
        )
    )
    clock["now"] += timedelta(seconds=10)
    assert leases.tick() == (1, 0)
    clock["now"] += timedelta(seconds=10)  # past the dead one's lease, within my renewed one
    assert leases.tick() == (1, 1)
    assert runs.get(mine.id).status is RunStatus.STARTED
    assert (runs.get(dead.id).status, runs.get(dead.id).result) == (RunStatus.FAILED, LEASE_EXPIRED)


def test_fail_in_flight_fails_only_this_process_runs(services, create_code, client):
    code_id = create_code()["id"]
    assert client.simulate_get(f"/action/endpoint/{code_id}").status_code == 200
    (finished,) = services.store.runs.list_by_code(code_id)
    owner = services.runs.leases.owner
    assert finished.status is RunStatus.COMPLETED
    runs = services.store.runs
    mine = runs.create(
        NewRun(
            code_id=code_id,
            status=RunStatus.STARTED,
            owner=owner,
            lease_expires_at=services.runs.leases.until(),
        )
    )
    other = runs.create(
        NewRun(
            code_id=code_id,
            status=RunStatus.STARTED,
            owner=owner + "x",
            lease_expires_at=services.runs.leases.until(),
        )
    )
    assert services.runs.fail_in_flight() == 1
    assert (runs.get(mine.id).status, runs.get(mine.id).result) == (RunStatus.FAILED, SHUTTING_DOWN)
    assert runs.get(other.id).status is RunStatus.STARTED
    assert runs.get(finished.id).status is RunStatus.COMPLETED
