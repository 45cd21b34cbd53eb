from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from codeactions_go import GoRuntime
from codeactions_go.settings import GoSettings

from codeactions_core.execution.runtime import Job, Outcome
from codeactions_core.model import Code, CodeType
from codeactions_core.settings import Settings


def go_code(source: str, timeout: int = 10) -> Code:
    return Code(
        id=uuid.uuid4().hex,
        name="test",
        type=CodeType.ENDPOINT,
        source=source,
        language="go",
        project_uuid="P",
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def go_data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One data directory, and so one Go build cache, for the session."""
    if shutil.which("go") is None:
        pytest.skip("the go toolchain is not installed")
    return str(tmp_path_factory.mktemp("go-data"))


@pytest.fixture
def start_runtime(go_data_dir: str) -> Iterator[Callable[..., GoRuntime]]:
    """Started runtimes (stopped afterwards), on the shared data directory unless told."""
    started: list[GoRuntime] = []

    def start(**settings: Any) -> GoRuntime:
        runtime = GoRuntime(Settings.of(GoSettings, **{"data_dir": go_data_dir, **settings}))
        runtime.start()
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        runtime.stop()


@pytest.fixture(scope="session")
def runtime(go_data_dir: str) -> Iterator[GoRuntime]:
    runtime = GoRuntime(Settings(data_dir=go_data_dir))
    runtime.start()
    assert runtime.health().ready, runtime.health().message
    yield runtime
    runtime.stop()


@pytest.fixture
def run(runtime: GoRuntime) -> Callable[..., Outcome]:
    """Run a source once: ``run(source, params=..., headers=..., body=..., timeout=...)``."""

    def run_source(source: str, *, timeout: int = 10, **request: Any) -> Outcome:
        return runtime.execute(Job(uuid.uuid4().hex, go_code(source, timeout), **request))

    return run_source


@pytest.fixture
def unique() -> str:
    """A comment that makes a source new to the binary cache."""
    return f"// {uuid.uuid4().hex}\n"


def constant_bomb(doublings: int, *, kept: bool = False) -> str:
    """A 16-byte string constant doubled ``doublings`` times (``kept``: also in the binary)."""
    lines = ["package main", "", 'const c0 = "xxxxxxxxxxxxxxxx"']
    lines += [f"const c{n} = c{n - 1} + c{n - 1}" for n in range(1, doublings + 1)]
    if kept:
        lines += [f"var big = c{doublings}", "", "func main() { println(len(big)) }"]
    else:
        lines += ["", f"func main() {{ println(len(c{doublings})) }}"]
    return "\n".join(lines) + "\n"


@pytest.fixture
def bomb() -> Callable[..., str]:
    """``bomb(doublings, kept=False)``: a constant-doubling compile bomb's source."""
    return constant_bomb


@pytest.fixture
def new_code() -> Callable[..., Code]:
    """``new_code(source, timeout=10)``: a Go code with a fresh id."""
    return go_code
