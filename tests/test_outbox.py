"""The local outbox on its own: order, the size cap, a dead process's file adopted, and
a run the database lost restored by RunService's replay."""

from __future__ import annotations

import pytest

from codeactions_core.errors import InvalidInput, StoreError
from codeactions_core.model import RunStatus
from codeactions_core.services.outbox import Outbox, OutboxFull, PendingWrite


def pending(n: int, logs: int = 0) -> PendingWrite:
    return PendingWrite(
        run_id=f"run-{n}",
        code_id="code",
        status="completed",
        result=f"r{n}",
        extra={"n": n},
        logs=[("info", f"line {i}") for i in range(logs)],
    )


def test_entries_are_replayed_in_order_and_kept_while_the_database_is_down(tmp_path):
    outbox = Outbox(tmp_path, 1 << 20, "p1")
    for n in range(4):
        outbox.add(pending(n))
    written: list[str] = []
    down = {"run-2"}

    def write(entry: PendingWrite, logs_stored) -> None:
        if entry.run_id in down:
            raise StoreError("database unavailable")
        written.append(entry.run_id)

    assert outbox.replay(write) == 2
    assert written == ["run-0", "run-1"] and outbox.pending() == 2  # stopped at the first failure
    down.clear()
    assert outbox.replay(write) == 2
    assert written == ["run-0", "run-1", "run-2", "run-3"] and outbox.pending() == 0
    outbox.close()


def test_logs_marked_stored_are_not_written_again(tmp_path):
    outbox = Outbox(tmp_path, 1 << 20, "p1")
    outbox.add(pending(0, logs=2))
    seen: list[tuple[list, dict]] = []

    def fail_after_logs(entry: PendingWrite, logs_stored) -> None:
        seen.append((list(entry.logs), dict(entry.extra)))
        if entry.logs:
            logs_stored({**entry.extra, "logs_location": "there"})
            raise StoreError("gone again before the run's write")

    assert outbox.replay(fail_after_logs) == 0
    assert outbox.replay(fail_after_logs) == 1
    assert seen == [
        ([("info", "line 0"), ("info", "line 1")], {"n": 0}),
        ([], {"n": 0, "logs_location": "there"}),
    ]
    outbox.close()


def test_a_record_the_database_refuses_for_good_is_dropped(tmp_path):
    outbox = Outbox(tmp_path, 1 << 20, "p1")
    outbox.add(pending(0))
    outbox.add(pending(1))

    def refuse_first(entry: PendingWrite, logs_stored) -> None:
        if entry.run_id == "run-0":
            raise InvalidInput("value rejected by the database")

    assert outbox.replay(refuse_first) == 2 and outbox.pending() == 0
    outbox.close()


def test_the_size_cap_refuses_and_zero_disables(tmp_path):
    small = Outbox(tmp_path, 64 * 1024, "p1")
    big = PendingWrite(run_id="r", code_id="c", status="completed", result="x" * 40_000, extra={})
    small.add(big)
    with pytest.raises(OutboxFull):
        small.add(big)
    with pytest.raises(OutboxFull):
        Outbox(tmp_path, 0, "p2").add(pending(0))
    small.close()


def test_the_outbox_of_a_dead_process_is_adopted_and_removed(tmp_path):
    dead = Outbox(tmp_path, 1 << 20, "dead")
    dead.add(pending(0))
    dead.add(pending(1))
    alive = Outbox(tmp_path, 1 << 20, "alive")
    alive.add(pending(2))
    written: list[str] = []
    assert alive.replay(lambda entry, _: written.append(entry.run_id)) == 1  # "dead" holds its lock
    dead.close()  # its process ends: the lock is free
    assert alive.replay(lambda entry, _: written.append(entry.run_id)) == 2
    assert written == ["run-2", "run-0", "run-1"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("dead")] == []  # removed
    alive.close()


def test_a_run_the_database_lost_is_restored_from_the_outbox(services):
    from codeactions_core.model import CodeType, NewCode
    from codeactions_core.store import NewRun

    code = services.store.codes.create(
        NewCode(
            name="c",
            type=CodeType.ENDPOINT,
            source="x",
            language="python",
            project_uuid="P",
            timeout=10,
        )
    )
    run = services.store.runs.create(
        NewRun(code_id=code.id, status=RunStatus.STARTED, params={"a": "1"}, body="b")
    )
    services.runs.outbox.add(
        PendingWrite(
            run_id=run.id,
            code_id=code.id,
            status="completed",
            result="done",
            extra={"k": 1},
            logs=[("info", "hello")],
            run={
                "params": run.params,
                "body": run.body,
                "headers": {},
                "created_at": run.created_at.isoformat(),
                "code_mongo_id": None,
            },
        )
    )
    services.store.runs.delete_older_than(run.created_at.replace(year=run.created_at.year + 1), 10)
    assert services.store.runs.get(run.id) is None  # lost with the database's crash
    assert services.runs.replay_outbox() == 1
    restored = services.store.runs.get(run.id)
    assert (restored.status, restored.result, restored.extra, restored.params, restored.body) == (
        RunStatus.COMPLETED,
        "done",
        {"k": 1},
        {"a": "1"},
        "b",
    )
    assert [
        log.content for log in services.log_store.list_by_run(restored, page=1, per_page=10).items
    ] == ["hello"]
