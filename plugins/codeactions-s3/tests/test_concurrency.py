"""add_many writes a run's lines at once, and listing still returns them in order."""

from __future__ import annotations

import threading
import uuid

from codeactions_core.model import CodeLog, CodeRun, LogType, RunStatus
from codeactions_core.testing.log_store_contract import located

OVERLAPPING = 4


def test_fifty_lines_are_written_concurrently_and_listed_in_order(log_store):
    # The first few PutObject calls wait for each other: a store writing one line at
    # a time would never let them meet, and the barrier would break (failing the write).
    barrier = threading.Barrier(OVERLAPPING, timeout=10)
    started = iter(range(10**6))
    lock = threading.Lock()

    def meet(**_: object) -> None:
        with lock:
            position = next(started)
        if position < OVERLAPPING:
            barrier.wait()

    log_store.client.meta.events.register("before-call.s3.PutObject", meet)
    run = CodeRun(id=str(uuid.uuid4()), code_id=str(uuid.uuid4()), status=RunStatus.COMPLETED)
    lines = [
        CodeLog(
            id="", run_id=run.id, code_id=run.code_id, type=LogType.INFO, content=f"line {i:02d}"
        )
        for i in range(50)
    ]
    run = located(run, log_store.add_many(lines))
    assert not barrier.broken
    pages = [log_store.list_by_run(run, page=n, per_page=20) for n in (1, 2, 3)]
    assert [line.content for page in pages for line in page.items] == [
        f"line {i:02d}" for i in range(50)
    ]
    assert len({line.id for page in pages for line in page.items}) == 50


def test_concurrent_runs_from_many_threads_stay_apart(log_store):
    runs = [
        CodeRun(id=str(uuid.uuid4()), code_id=str(uuid.uuid4()), status=RunStatus.COMPLETED)
        for _ in range(8)
    ]
    located_runs: dict[str, CodeRun] = {}

    def write(run: CodeRun) -> None:
        lines = [
            CodeLog(
                id="",
                run_id=run.id,
                code_id=run.code_id,
                type=LogType.INFO,
                content=f"{run.id} {i}",
            )
            for i in range(5)
        ]
        located_runs[run.id] = located(run, log_store.add_many(lines))

    threads = [threading.Thread(target=write, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(located_runs) == 8
    for run in located_runs.values():
        listed = log_store.list_by_run(run, page=1, per_page=20).items
        assert [line.content for line in listed] == [f"{run.id} {i}" for i in range(5)]
