"""Installed Python libraries in the real sandbox: importable by runs, never writable by them.

A real install from the package index: ``six`` (one pure-Python module, a
wheel, no dependencies). Skipped when the index cannot be reached (failed
under CODEACTIONS_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeactions_core.execution.runtime import Job, Outcome
from codeactions_core.model import Code, CodeType, RunStatus
from codeactions_core.services.libs import LibraryService
from codeactions_core.settings import Settings
from codeactions_core.testing.api import api_client
from codeactions_core.testing.pytest_plugin import require_service
from codeactions_python import PythonRuntime
from codeactions_python.runtime import libs_dir

LIBRARY = "six"
USES_LIBRARY = f"""import {LIBRARY}
def Run(engine):
    engine.result.set({{"version": {LIBRARY}.__version__, "file": {LIBRARY}.__file__}}, content_type="json")
"""
WRITES_LIBS = """import errno, json, os
def attempt(action):
    try:
        action()
        return "allowed"
    except OSError as exc:
        return errno.errorcode[exc.errno]
def Run(engine):
    libs = engine.params.get("libs")
    engine.result.set({
        "create": attempt(lambda: open(os.path.join(libs, "evil.py"), "w").write("x = 1")),
        "overwrite": attempt(lambda: open(os.path.join(libs, "six.py"), "a").write("x = 1")),
        "delete": attempt(lambda: os.remove(os.path.join(libs, "six.py"))),
        "mkdir": attempt(lambda: os.mkdir(os.path.join(libs, "evil"))),
    }, content_type="json")
"""


class NoRecords:
    """A LibRepository that keeps nothing (these tests install by name)."""

    def add(self, name: str, language: str) -> None: ...

    def list(self, language: str | None = None) -> list:
        return []


@pytest.fixture(scope="module")
def package_index() -> None:
    require_service("the package index", "https://pypi.org", 443)


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    return Settings(data_dir=str(tmp_path_factory.mktemp("data")), libs_install_timeout=120)


@pytest.fixture(scope="module")
def sandbox(settings) -> Iterator[PythonRuntime]:
    runtime = PythonRuntime(settings)
    runtime.start()
    yield runtime
    runtime.stop()


@pytest.fixture(scope="module")
def installed(settings, sandbox, package_index) -> LibraryService:
    """The library, installed after the sandbox started; checked absent before."""
    before = execute(sandbox, USES_LIBRARY)
    assert before.status is not RunStatus.COMPLETED
    assert f"No module named '{LIBRARY}'" in before.result, before.result
    libraries = LibraryService(settings, NoRecords())
    assert libraries.install([LIBRARY]) == [LIBRARY]
    return libraries


def execute(runtime: PythonRuntime, source: str, **params: str) -> Outcome:
    code = Code(id="c", name="t", type=CodeType.ENDPOINT, source=source, language="python",
                project_uuid="P", timeout=20)
    return runtime.execute(Job(run_id="r", code=code, params=params))


def snapshot(directory: Path) -> dict[str, bytes | None]:
    return {
        str(path.relative_to(directory)): None if path.is_dir() else path.read_bytes()
        for path in sorted(directory.rglob("*"))
    }


def test_the_runtime_creates_the_libs_directory(settings, sandbox):
    assert Path(libs_dir(settings)).is_dir()
    assert str(LibraryService(settings, NoRecords()).directory) == libs_dir(settings)


def test_an_installed_library_is_importable_by_runs(settings, sandbox, installed):
    outcome = execute(sandbox, USES_LIBRARY)
    assert outcome.status is RunStatus.COMPLETED, outcome.result
    seen = json.loads(outcome.result)
    assert seen["file"] == os.path.join(libs_dir(settings), "six.py")
    assert seen["version"].count(".") >= 1


def test_runs_cannot_write_into_the_libs_directory(settings, sandbox, installed):
    protections = sandbox.health().details
    if not (protections.get("filesystem_view") or protections.get("unprivileged_user")):
        pytest.skip("runs execute as the server's user without a file-system view here")
    before = snapshot(installed.directory)
    outcome = execute(sandbox, WRITES_LIBS, libs=libs_dir(settings))
    assert outcome.status is RunStatus.COMPLETED, outcome.result
    assert set(json.loads(outcome.result).values()) <= {"EROFS", "EACCES", "EPERM"}, outcome.result
    assert snapshot(installed.directory) == before


def test_create_through_the_api_installs_then_runs(tmp_path, package_index):
    settings = Settings(data_dir=str(tmp_path / "data"), auto_install_libs=True, libs_install_timeout=120)
    with api_client(settings) as (client, services):
        libraries = services.libs
        assert libraries.missing([LIBRARY]) == [LIBRARY]

        query = {"name": "uses six", "language": "python", "type": "endpoint", "project_uuid": "P1"}
        created = client.simulate_post("/code", params=query, body=USES_LIBRARY)
        assert created.status_code == 201, created.text
        ran = client.simulate_get(f"/action/endpoint/{created.json['id']}")

        assert ran.status_code == 200, ran.text
        assert ran.json["file"] == os.path.join(libs_dir(settings), "six.py")
        assert [lib.name for lib in services.store.libs.list("python")] == [LIBRARY]
