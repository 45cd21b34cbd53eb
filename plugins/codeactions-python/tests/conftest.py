from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from codeactions_python import PythonRuntime

from codeactions_core.execution.runtime import Job, Outcome
from codeactions_core.model import Code, CodeType
from codeactions_core.settings import Settings

_ids = itertools.count()


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> Iterator[PythonRuntime]:
    runtime = PythonRuntime(Settings(data_dir=str(tmp_path_factory.mktemp("data"))))
    runtime.start()
    yield runtime
    runtime.stop()


@pytest.fixture
def run(runtime):
    """Run a source in the real sandbox: run(source, params=..., headers=..., body=...)."""

    def execute(source: str, *, timeout: int = 10, **request) -> Outcome:
        number = next(_ids)
        code = Code(
            id=f"code-{number}",
            name="t",
            type=CodeType.ENDPOINT,
            source=source,
            language="python",
            project_uuid="P",
            timeout=timeout,
        )
        return runtime.execute(Job(run_id=f"run-{number}", code=code, **request))

    return execute
