"""Installed Python libraries in the real sandbox: importable by runs, never writable by them.

A real install from the package index: ``six`` (one pure-Python module, a
wheel, no dependencies). Skipped when the index cannot be reached (failed
under CODEACTIONS_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from codeactions_python import PythonRuntime
from codeactions_python.runtime import LIBS_INSIDE

from codeactions_core.execution.runtime import Job, Outcome
from codeactions_core.libs import libs_dir
from codeactions_core.libs.service import LibraryService
from codeactions_core.model import Code, CodeType, RunStatus
from codeactions_core.settings import Settings
from codeactions_core.testing.api import api_client
from codeactions_core.testing.fixtures import require_service

LIBRARY = "six"
USES_LIBRARY = (
    f"import {LIBRARY}\n"
    "def Run(engine):\n"
    f'    engine.result.set({{"version": {LIBRARY}.__version__, "file": {LIBRARY}.__file__}}, '
    'content_type="json")\n'
)
WRITES_LIBS = """import errno, json, os
def attempt(action):
    try:
        action()
        return "allowed"
    except OSError as exc:
        return errno.errorcode[exc.errno]
def Run(engine):
    libs = engine.params.get("libs")
    victim = engine.params.get("victim", "six.py")
    engine.result.set({
        "create": attempt(lambda: open(os.path.join(libs, "evil.py"), "w").write("x = 1")),
        "overwrite": attempt(lambda: open(os.path.join(libs, victim), "a").write("x = 1")),
        "delete": attempt(lambda: os.remove(os.path.join(libs, victim))),
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
    code = Code(
        id="c",
        name="t",
        type=CodeType.ENDPOINT,
        source=source,
        language="python",
        project_uuid="P",
        timeout=20,
    )
    return runtime.execute(Job(run_id="r", code=code, params=params))


def snapshot(directory: Path) -> dict[str, bytes | None]:
    return {
        str(path.relative_to(directory)): None if path.is_dir() else path.read_bytes()
        for path in sorted(directory.rglob("*"))
    }


def test_the_runtime_creates_the_libs_directory(settings, sandbox):
    assert Path(libs_dir(settings)).is_dir()
    assert LibraryService(settings, NoRecords()).directory == libs_dir(settings)


def test_an_installed_library_is_importable_by_runs(settings, sandbox, installed):
    outcome = execute(sandbox, USES_LIBRARY)
    assert outcome.status is RunStatus.COMPLETED, outcome.result
    seen = json.loads(outcome.result)
    assert seen["file"] == os.path.join(LIBS_INSIDE, "six.py")  # the libs directory, as runs see it
    assert seen["version"].count(".") >= 1


def test_runs_cannot_write_into_the_libs_directory(settings, sandbox, installed):
    protections = sandbox.health().details
    if protections.get("filesystem") != "allowlist root":
        pytest.skip("runs execute as the server's user without a file-system view here")
    before = snapshot(installed.directory)
    outcome = execute(sandbox, WRITES_LIBS, libs=LIBS_INSIDE)
    assert outcome.status is RunStatus.COMPLETED, outcome.result
    assert set(json.loads(outcome.result).values()) <= {"EROFS", "EACCES", "EPERM"}, outcome.result
    assert snapshot(installed.directory) == before


def test_create_through_the_api_installs_then_runs(tmp_path, package_index):
    pytest.importorskip("codeactions_sql", reason="the API needs the SQLite store")
    settings = Settings(
        data_dir=str(tmp_path / "data"), auto_install_libs=True, libs_install_timeout=120
    )
    with api_client(settings) as (client, services):
        libraries = services.libs
        assert libraries.missing([LIBRARY]) == [LIBRARY]

        query = {"name": "uses six", "language": "python", "type": "endpoint", "project_uuid": "P1"}
        created = client.simulate_post("/code", params=query, body=USES_LIBRARY)
        assert created.status_code == 201, created.text
        ran = client.simulate_get(f"/action/endpoint/{created.json['id']}")

        assert ran.status_code == 200, ran.text
        assert ran.json["file"] == os.path.join(LIBS_INSIDE, "six.py")
        assert [lib.name for lib in services.store.libs.list("python")] == [LIBRARY]


def test_a_library_never_shadows_the_standard_library(settings, sandbox):
    shadow = (
        Path(libs_dir(settings)) / "colorsys.py"
    )  # a standard module the harness does not preload
    shadow.write_text("HIJACKED = True\n")
    try:
        outcome = execute(
            sandbox,
            "import colorsys\ndef Run(engine):\n"
            "    engine.result.set(getattr(colorsys, 'HIJACKED', False))\n",
        )
    finally:
        shadow.unlink()
    assert (outcome.status, outcome.result) == (RunStatus.COMPLETED, "false"), outcome.result


# --- a real server: installed on create, after its workers started, then run ---------

REAL_LIBRARY = "tabulate"  # pure Python, one wheel, no dependencies; not in the test environment
USES_REAL_LIBRARY = """import tabulate
def Run(engine):
    table = tabulate.tabulate([["a", 1], ["b", 22]], tablefmt="plain")
    engine.result.set({"table": table, "file": tabulate.__file__}, content_type="json")
"""
LOOKS_AROUND = """import os
def Run(engine):
    seen = {}
    for name in ("data", "libs_root"):
        try:
            seen[name] = sorted(os.listdir(engine.params.get(name)))
        except OSError as exc:
            seen[name] = type(exc).__name__
    engine.result.set(seen, content_type="json")
"""


@pytest.mark.e2e
def test_a_real_server_installs_on_create_and_runs_the_code(tmp_path, package_index):
    pytest.importorskip("codeactions_sql", reason="a real server needs the SQLite store")
    requests = pytest.importorskip("requests")
    from codeactions_core.testing.server import run_cli, start_server

    assert importlib.util.find_spec(REAL_LIBRARY) is None, (
        "pick a library the test environment lacks"
    )
    data = tmp_path / "data"
    settings = {
        "FLOWS_CODE_ACTIONS_DATA_DIR": str(data),
        "FLOWS_CODE_ACTIONS_AUTO_INSTALL_LIBS": "true",
        "FLOWS_CODE_ACTIONS_LIBS_INSTALL_TIMEOUT": "120",
    }
    libs = data / "libs" / "python"
    server = start_server(settings, tmp_path, workers=2)
    try:

        def create(name: str, source: str) -> requests.Response:
            query = {"name": name, "language": "python", "type": "endpoint", "project_uuid": "P"}
            return requests.post(
                server.url("/code"), params=query, data=source.encode(), timeout=150
            )

        def call(code_id: str, **params: str) -> requests.Response:
            return requests.get(
                server.url(f"/action/endpoint/{code_id}"), params=params, timeout=60
            )

        created = create("table", USES_REAL_LIBRARY)
        assert created.status_code == 201, created.text
        # Both workers' sandboxes started before the install: each run may land on either.
        answers = [call(created.json()["id"]) for _ in range(6)]
        assert {answer.status_code for answer in answers} == {200}, answers[0].text
        assert answers[0].json() == {
            "table": "a   1\nb  22",
            "file": f"{LIBS_INSIDE}/tabulate/__init__.py",
        }

        protections = requests.get(server.url("/health"), timeout=30).json()["sandbox"]
        if protections.get("filesystem") != "allowlist root":
            pytest.skip("runs execute as the server's user without a file-system view here")
        writer = create("writer", WRITES_LIBS)
        assert writer.status_code == 201, writer.text
        before = snapshot(libs)
        attempts = call(writer.json()["id"], libs=LIBS_INSIDE, victim="tabulate/__init__.py")
        assert attempts.status_code == 200, attempts.text
        assert set(attempts.json().values()) <= {"EROFS", "EACCES", "EPERM"}, attempts.text
        assert snapshot(libs) == before

        looker = create("looker", LOOKS_AROUND)
        seen = call(
            looker.json()["id"], data=str(data), libs_root=os.path.dirname(LIBS_INSIDE)
        ).json()
        # Nothing of the data directory (database, lock, staging) exists in the root.
        assert seen == {"data": "FileNotFoundError", "libs_root": ["python"]}

        refused = create("broken", "import codeactions_no_such_library_4f1c\n")
        assert (
            refused.status_code == 400
            and "codeactions_no_such_library_4f1c" in refused.json()["message"]
        )
        listed = requests.get(server.url("/code"), params={"project_uuid": "P"}, timeout=30).json()
        assert sorted(code["name"] for code in listed) == ["looker", "table", "writer"]
    finally:
        assert server.stop() == 0
    listing = run_cli("libs", "list", settings=settings)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.split() == [REAL_LIBRARY, "installed"]
