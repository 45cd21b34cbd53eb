from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest
from codeactions_javascript import JavaScriptRuntime
from codeactions_javascript.settings import NodeSettings

from codeactions_core.execution.runtime import Job, Outcome
from codeactions_core.model import Code, CodeType
from codeactions_core.settings import Settings

_ids = itertools.count()

Run = Callable[..., Outcome]


def execute(runtime: JavaScriptRuntime, source: str, *, timeout: int = 10, **request) -> Outcome:
    """Run ``source`` in ``runtime``'s real sandbox; ``request``: params, body, headers."""
    number = next(_ids)
    code = Code(
        id=f"code-{number}",
        name="t",
        type=CodeType.ENDPOINT,
        source=source,
        language="javascript",
        project_uuid="P",
        timeout=timeout,
    )
    return runtime.execute(Job(run_id=f"run-{number}", code=code, **request))


@pytest.fixture(scope="session")
def runtime(tmp_path_factory) -> Iterator[JavaScriptRuntime]:
    runtime = JavaScriptRuntime(Settings(data_dir=str(tmp_path_factory.mktemp("data"))))
    runtime.start()
    health = runtime.health()
    if health.message.startswith("node not found"):
        pytest.skip(health.message)
    assert health.ready, health.message
    yield runtime
    runtime.stop()


@pytest.fixture
def run(runtime) -> Run:
    """run(source, timeout=..., params=..., headers=..., body=...): the outcome of one real run."""
    return lambda source, **options: execute(runtime, source, **options)


@pytest.fixture
def run_on() -> Callable[..., Outcome]:
    """run_on(runtime, source, ...): like ``run``, in a runtime of the test's own."""
    return execute


@pytest.fixture
def start_runtime(tmp_path) -> Iterator[Callable[..., JavaScriptRuntime]]:
    """start_runtime(**settings): a started runtime with these settings, stopped after the test."""
    started: list[JavaScriptRuntime] = []

    def start(**changes) -> JavaScriptRuntime:
        runtime = JavaScriptRuntime(
            Settings.of(NodeSettings, data_dir=str(tmp_path / "data"), **changes)
        )
        started.append(runtime)
        runtime.start()
        return runtime

    yield start
    for runtime in started:
        runtime.stop()
