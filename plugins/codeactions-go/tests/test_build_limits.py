"""Build limits without compiling: cache caps, the build semaphore, limit failures named, cached."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from codeactions_go import GoRuntime, build
from codeactions_go.build import Builder, resource_failure
from codeactions_go.cache import BinaryCache, trim_directory
from codeactions_go.settings import GoSettings
from codeactions_go.toolchain import (
    MIB,
    BuildLimits,
    CommandResult,
    Toolchain,
    Workspace,
    goroot_binds,
)

from codeactions_core.execution import Report
from codeactions_core.settings import Settings

LIMITS = BuildLimits(memory=1024 * MIB, binary=64 * MIB, timeout=60.0)
PROGRAM = "package main\n\nfunc main() {}\n"
OOM = "compiling the code needed more than 1024 MiB of memory"
TOO_BIG = "the compiled program is larger than 64 MiB"


def binary(folder: Path, size: int) -> Path:
    """A fake build output of ``size`` bytes, as a build would leave it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"out-{size}-{len(os.listdir(folder))}"
    with open(path, "wb") as file:
        file.write(b"\x7fELF")
        file.truncate(size)
    return path


def test_the_cache_keeps_its_total_bytes_under_the_cap_least_recently_used_out(tmp_path):
    cache = BinaryCache(tmp_path / "bin", max_entries=100, max_bytes=16 * MIB)
    for key in "abc":
        cache.add_binary(key, cache.adopt(binary(tmp_path / "out", 5 * MIB)))
    assert cache.lookup("a") is not None  # used: b is now the least recently used
    cache.add_binary("d", cache.adopt(binary(tmp_path / "out", 5 * MIB)))
    assert {path.name for path in cache.entries()} == {"a", "c", "d"}
    assert cache.total_bytes() <= 16 * MIB
    cache.add_error("e", "the code does not compile:\nx")
    cache.add_binary("f", cache.adopt(binary(tmp_path / "out", 12 * MIB)))
    assert cache.total_bytes() <= 16 * MIB
    assert [path.name for path in cache.entries()][-1] == "f"


def test_one_binary_over_the_whole_budget_stays_alone_until_the_next(tmp_path):
    cache = BinaryCache(tmp_path / "bin", max_entries=100, max_bytes=16 * MIB)
    cache.add_binary("a", cache.adopt(binary(tmp_path / "out", 2 * MIB)))
    entry = cache.add_binary("big", cache.adopt(binary(tmp_path / "out", 20 * MIB)))
    assert entry.path is not None and entry.path.exists()
    assert [path.name for path in cache.entries()] == ["big"]
    cache.add_binary("b", cache.adopt(binary(tmp_path / "out", 2 * MIB)))
    assert [path.name for path in cache.entries()] == ["b"]


def test_the_entry_count_cap_still_holds(tmp_path):
    cache = BinaryCache(tmp_path / "bin", max_entries=2, max_bytes=1024 * MIB)
    for key in "abc":
        cache.add_binary(key, cache.adopt(binary(tmp_path / "out", 1024)))
    assert [path.name for path in cache.entries()] == ["b", "c"]


def test_only_a_regular_file_is_adopted_from_a_build(tmp_path):
    cache = BinaryCache(tmp_path / "bin", max_entries=2)
    secret = tmp_path / "secret"
    secret.write_text("not a build output")
    (tmp_path / "link").symlink_to(secret)
    os.mkfifo(tmp_path / "fifo")
    assert cache.adopt(tmp_path / "link") is None
    assert cache.adopt(tmp_path / "fifo") is None
    assert cache.adopt(tmp_path / "missing") is None
    adopted = cache.adopt(binary(tmp_path / "out", 10))
    assert adopted is not None and adopted.parent == cache.directory
    assert os.stat(adopted).st_uid == os.getuid()


def test_go_build_cache_trim_removes_the_oldest_files_first(tmp_path):
    for index in range(6):
        path = tmp_path / f"{index:02x}" / f"entry-{index}-d"
        path.parent.mkdir()
        path.write_bytes(b"x" * MIB)
        os.utime(path, ns=(index * 10**9, index * 10**9))
    removed = trim_directory(tmp_path, 3 * MIB)
    assert removed == 3 * MIB
    left = sorted(path.name for path in tmp_path.rglob("entry-*"))
    assert left == ["entry-3-d", "entry-4-d", "entry-5-d"]
    assert trim_directory(tmp_path, 0, keep_newer_than=10**10) == 0  # all recent: spared


class FakeZygote:
    """Stands in for the build zygote: each run waits until the test lets it finish."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.active = self.entered = self.most = self.finished = 0
        self.allowed = 0

    def run(self, spec: Any, job: Any) -> Report:
        with self.condition:
            self.entered += 1
            self.active += 1
            self.most = max(self.most, self.active)
            self.condition.notify_all()
            self.condition.wait_for(lambda: self.allowed > self.finished)
            self.active -= 1
            self.finished += 1
            self.condition.notify_all()
        return Report(exit_code=0)

    def wait_for(self, predicate: Any) -> None:
        with self.condition:
            assert self.condition.wait_for(predicate, timeout=30)

    def allow_one(self) -> None:
        with self.condition:
            self.allowed += 1
            self.condition.notify_all()


def test_the_build_semaphore_bounds_concurrent_builds_and_the_rest_queue(tmp_path):
    settings = Settings.of(GoSettings, data_dir=str(tmp_path), go_max_concurrent_builds=2)
    toolchain = Toolchain(settings, tmp_path / "go")
    toolchain.path, toolchain.goroot, toolchain.version = "/usr/bin/go", "/usr/lib/go", "go1.19"
    zygote = FakeZygote()
    toolchain._zygote = zygote  # type: ignore[assignment]
    results: list[CommandResult] = []
    threads = [
        threading.Thread(target=lambda: results.append(toolchain.run(["build"], cwd="/build")))
        for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    zygote.wait_for(lambda: zygote.entered == 2)
    assert (zygote.entered, zygote.active) == (2, 2)  # three wait for a slot
    for done in range(1, 6):
        zygote.allow_one()
        zygote.wait_for(lambda done=done: zygote.finished == done)
        assert zygote.active <= 2
    for thread in threads:
        thread.join()
    assert zygote.most == 2 and zygote.entered == 5
    assert [result.returncode for result in results] == [0] * 5


def test_the_runtime_caps_its_binary_cache_by_entries_and_bytes(tmp_path):
    runtime = GoRuntime(
        Settings.of(GoSettings, data_dir=str(tmp_path), go_cache_entries=7, go_cache_mb=16)
    )
    cache = runtime.builder.cache
    assert (cache.max_entries, cache.max_bytes) == (7, 16 * MIB)
    assert runtime.builder.toolchain.limits.cache == 16 * MIB  # and Go's own build cache


def test_build_limits_come_from_the_settings(tmp_path):
    settings = Settings.of(
        GoSettings,
        data_dir=str(tmp_path),
        go_build_memory_mb=512,
        go_binary_max_mb=8,
        go_build_timeout=30,
        go_max_concurrent_builds=3,
        go_cache_mb=64,
    )
    toolchain = Toolchain(settings, tmp_path / "go")
    assert toolchain.limits == BuildLimits(
        memory=512 * MIB, binary=8 * MIB, timeout=30.0, concurrent=3, cache=64 * MIB
    )
    limits = toolchain.sandbox_limits()
    assert (limits.cgroup_memory, limits.file_size) == (512 * MIB, 8 * MIB)
    assert limits.memory > 512 * MIB  # the Go runtime's address-space headroom
    assert toolchain.sandbox_limits(background=True).cpu_shares < limits.cpu_shares
    assert toolchain.environment()["GOMEMLIMIT"] == str(512 * MIB * 8 // 10)


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (CommandResult(None, "", timed_out=True), "compiling the code took longer than 60 s"),
        (
            CommandResult(2, "runtime: out of memory: cannot allocate\nfatal error: out of memory"),
            OOM,
        ),
        (
            CommandResult(1, "# codeaction\n/usr/lib/go/pkg/tool/compile: signal: killed"),
            OOM,
        ),
        (CommandResult(None, "", signal=signal.SIGKILL), OOM),
        (
            CommandResult(2, "compile: writing output: write $WORK/b001/_pkg_.a: file too large\n"),
            TOO_BIG,
        ),
        (
            CommandResult(2, "link: mapping output file failed: file too large\n"),
            TOO_BIG,
        ),
        (CommandResult(None, "", signal=signal.SIGXFSZ), TOO_BIG),
        (CommandResult(2, "# codeaction\n./action.go:3:5: undefined: x\n"), None),
        (  # the compiler quotes the source: a string in it is no clue
            CommandResult(2, './action.go:3:9: invalid operation: "out of memory" + 1\n'),
            None,
        ),
    ],
    ids=[
        "timeout",
        "runtime-oom",
        "oom-killed",
        "killed",
        "object-size",
        "link-size",
        "sigxfsz",
        "compile-error",
        "quoted",
    ],
)
def test_a_limit_that_stopped_a_build_is_named(result, message):
    assert resource_failure(result, LIMITS) == message


class FakeToolchain:
    """A toolchain whose ``go build`` fails as told, counting its runs."""

    version = "go1.19.8 linux/amd64"
    language_version = "1.19"

    def __init__(self, root: Path, result: CommandResult, limits: BuildLimits = LIMITS) -> None:
        self.root, self.result, self.limits, self.runs = root, result, limits, 0

    @contextlib.contextmanager
    def workspace(self) -> Iterator[Workspace]:
        folder = self.root / f"build-{self.runs}"
        space = Workspace(folder, inside=str(folder))
        space.source.mkdir(parents=True)
        yield space

    def give(self, folder: Path) -> None:
        pass

    def run(self, args: Sequence[str], **options: Any) -> CommandResult:
        self.runs += 1
        return self.result

    def trim_build_cache(self) -> int:
        return 0


def test_a_resource_failure_is_cached_until_the_limits_change(tmp_path):
    oom = CommandResult(2, "fatal error: out of memory\n")
    toolchain = FakeToolchain(tmp_path, oom)
    cache = BinaryCache(tmp_path / "bin", 10)
    builder = Builder(toolchain, cache, {})  # type: ignore[arg-type]
    first = builder.build(PROGRAM)
    assert first.error == "compiling the code needed more than 1024 MiB of memory"
    assert builder.build(PROGRAM).error == first.error
    assert toolchain.runs == 1  # not compiled again
    toolchain.limits = BuildLimits(memory=2048 * MIB, binary=64 * MIB, timeout=60.0)
    assert builder.build(PROGRAM).error == "compiling the code needed more than 2048 MiB of memory"
    assert toolchain.runs == 2  # more memory now: tried again


def test_a_cached_timeout_is_retried_after_a_while(tmp_path, monkeypatch):
    toolchain = FakeToolchain(tmp_path, CommandResult(None, "", timed_out=True))
    builder = Builder(toolchain, BinaryCache(tmp_path / "bin", 10), {})  # type: ignore[arg-type]
    assert builder.build(PROGRAM).error == "compiling the code took longer than 60 s"
    assert builder.build(PROGRAM).error == "compiling the code took longer than 60 s"
    assert toolchain.runs == 1
    monkeypatch.setattr(build, "TIMEOUT_RETRY", -1.0)  # as if TIMEOUT_RETRY had passed
    builder.build(PROGRAM)
    assert toolchain.runs == 2


def test_goroot_binds_follow_its_links_out(tmp_path):
    goroot, share = tmp_path / "lib" / "go", tmp_path / "share" / "go"
    (goroot / "bin").mkdir(parents=True)
    (share / "src").mkdir(parents=True)
    (goroot / "src").symlink_to(share / "src")
    (goroot / "bin" / "gofmt").symlink_to(goroot / "bin" / "go")
    assert goroot_binds(str(goroot)) == sorted([str(goroot), str(share / "src")])
