"""Compiling once per source: the on-disk binary cache and the per-source lock."""

from __future__ import annotations

import threading
import uuid

from codeactions_core.execution.runtime import Job
from codeactions_core.model import RunStatus

TRIVIAL = """package main

func Run(engine *Engine) {
    engine.Result.Set("ok", 200, "text")
}
"""


def test_a_second_run_reuses_the_binary(runtime, new_code, unique):
    code = new_code(unique + TRIVIAL)
    compiles = runtime.builder.compiles
    first = runtime.execute(Job("r1", code))
    binary = runtime.builder.build(code.source).path
    inode = binary.stat().st_ino
    second = runtime.execute(Job("r2", code))
    assert (first.result, second.result) == ("ok", "ok")
    assert runtime.builder.compiles == compiles + 1
    assert binary.stat().st_ino == inode


def test_prepare_and_a_run_together_build_once(runtime, new_code, unique):
    code = new_code(unique + TRIVIAL)
    compiles = runtime.builder.compiles
    runtime.prepare(code)  # compiles in the background; the run waits for that build
    outcome = runtime.execute(Job("r", code))
    assert outcome.status is RunStatus.COMPLETED, outcome.result
    assert runtime.builder.compiles == compiles + 1


def test_concurrent_first_runs_of_one_code_build_once(runtime, new_code, unique):
    code = new_code(unique + TRIVIAL)
    compiles = runtime.builder.compiles
    barrier = threading.Barrier(4)
    results: list[str] = []

    def first_run() -> None:
        barrier.wait()
        results.append(runtime.execute(Job(uuid.uuid4().hex, code)).result)

    threads = [threading.Thread(target=first_run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["ok"] * 4
    assert runtime.builder.compiles == compiles + 1


def test_least_recently_used_binaries_are_evicted(start_runtime, tmp_path):
    runtime = start_runtime(data_dir=str(tmp_path), go_cache_entries=2)
    builder = runtime.builder
    a, b, c = (f"// {name}\n{TRIVIAL}" for name in "abc")
    builder.build(a)
    builder.build(b)
    builder.build(a)  # used: now b is the least recently used
    builder.build(c)
    assert {path.name for path in builder.cache.entries()} == {builder.key(a), builder.key(c)}
    compiles = builder.compiles
    builder.build(a)
    assert builder.compiles == compiles  # still cached
    builder.build(b)
    assert builder.compiles == compiles + 1  # evicted, built again
    assert len(builder.cache.entries()) == 2
