"""Python libraries of codes: found in sources, recorded, installed safely (pip faked
where the package index is not the point; the real one where it is)."""

from __future__ import annotations

import argparse
import fcntl
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import falcon.testing
import pytest

from codeactions_core.cli.libs import install_command, list_command
from codeactions_core.errors import InvalidInput, Unavailable
from codeactions_core.libs.imports import distribution_of, imports_of
from codeactions_core.libs.installer import (
    OUTPUT_CAP,
    PipResult,
    PipRunner,
    exclusive_lock,
    run_pip,
)
from codeactions_core.libs.service import LibraryService
from codeactions_core.services.codes import CodeInput, CodeService
from codeactions_core.services.schema import ensure_schema_ready
from codeactions_core.settings import Settings
from codeactions_core.testing.fixtures import require_service
from codeactions_core.testing.server import child_env, cli_command
from codeactions_core.web.app import create_app
from codeactions_core.wiring import Services, build_services

NO_SUCH_LIBRARY = "codeactions_no_such_library_4f1c"


def require_package_index() -> None:
    require_service("the package index", "https://pypi.org", 443)


def wheel(
    module: str, project: str | None = None, version: str = "1.0", **extra: str
) -> dict[str, str]:
    """The files pip would unpack for a one-module distribution (plus ``extra`` paths)."""
    project = project or module
    info = f"{project}-{version}.dist-info"
    files = {
        f"{module}.py": f"VERSION = {version!r}\n",
        f"{info}/METADATA": f"Name: {project}\n",
        **extra,
    }
    files[f"{info}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{info}/RECORD"])
    return files


@dataclass
class FakePip:
    """Stands in for pip: unpacks ``wheels[distribution]`` into --target; exits ``returncode``."""

    wheels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    returncode: int | None = 0
    output: str = ""
    calls: list[tuple[list[str], dict[str, str], float]] = field(default_factory=list)
    lock_held: list[bool] = field(default_factory=list)

    def __call__(
        self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float
    ) -> PipResult:
        self.calls.append((list(argv), dict(env), timeout))
        target = Path(argv[argv.index("--target") + 1])
        self.lock_held.append(locked(target.parent.parent / "python.lock"))
        for path, content in self.wheels.get(argv[-1], {}).items():
            (target / path).parent.mkdir(parents=True, exist_ok=True)
            (target / path).write_text(content)
        return PipResult(self.returncode, self.output)

    @property
    def installed(self) -> list[str]:
        return [argv[-1] for argv, _, _ in self.calls]


def locked(path: Path) -> bool:
    """Whether another open file description holds an flock on ``path``."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


class MemoryLibs:
    """A LibRepository in memory (for tests that need no store)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def add(self, name: str, language: str) -> None:
        self.names.append(name)

    def list(self, language: str | None = None) -> list:
        return []


def library_service(settings: Settings, pip: PipRunner) -> LibraryService:
    return LibraryService(settings, MemoryLibs(), pip=pip)


def snapshot(directory: Path) -> dict[str, bytes | None]:
    """Every path under ``directory`` with its content (None for directories)."""
    return {
        str(path.relative_to(directory)): None if path.is_dir() else path.read_bytes()
        for path in sorted(directory.rglob("*"))
    }


@pytest.fixture
def libs_settings(tmp_path) -> Settings:
    return Settings(data_dir=str(tmp_path / "data"), libs_install_timeout=60)


# --- what a source imports ---------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import os, sys, json\nfrom collections import abc\n", []),
        ("import requests\nimport yaml as y\n", ["requests", "yaml"]),
        ("import google.protobuf.message\nfrom PIL.Image import open\n", ["PIL", "google"]),
        (
            "def run():\n    import numpy\n    class A:\n        from pandas import DataFrame\n",
            ["numpy", "pandas"],
        ),
        ("from . import sibling\nfrom .pkg import thing\nfrom .. import up\n", []),
        ("from __future__ import annotations\nimport six\n", ["six"]),
        ("import six\nimport six.moves\nfrom six import PY3\nimport bs4, six\n", ["bs4", "six"]),
        ("try:\n    import ujson as json\nexcept ImportError:\n    import json\n", ["ujson"]),
        ("import builtins, _thread, sys\n", []),
    ],
    ids=[
        "stdlib",
        "plain",
        "dotted",
        "nested",
        "relative",
        "future",
        "duplicates",
        "fallback",
        "builtin",
    ],
)
def test_imports_of(source, expected):
    assert imports_of(source) == expected
    assert LibraryService.imports_of(source) == expected


@pytest.mark.parametrize(
    "source", ["import requests\ndef Run(:\n", "import six\x00", "(" * 300 + ")" * 300]
)
def test_a_source_that_does_not_parse_has_no_libraries(source):
    assert imports_of(source) == []


def test_well_known_import_names_map_to_their_distributions():
    assert [distribution_of(n) for n in ("yaml", "bs4", "PIL", "sklearn", "cv2", "dateutil")] == [
        "PyYAML",
        "beautifulsoup4",
        "pillow",
        "scikit-learn",
        "opencv-python-headless",
        "python-dateutil",
    ]
    assert distribution_of("requests") == "requests"


# --- installing --------------------------------------------------------------------


def test_skiplist_terms_never_reach_pip(libs_settings):
    pip = FakePip(wheels={"six": wheel("six")})
    settings = libs_settings.replace(skiplist=("tensorflow", "PyYAML"))
    libraries = library_service(settings, pip)

    assert libraries.install(["tensorflow", "yaml"]) == []
    assert pip.calls == []
    report = libraries.install_each(["tensorflow", "yaml", "six", "json"])
    assert pip.installed == ["six"]
    assert (report.installed, report.skipped, report.present) == (
        ["six"],
        ["tensorflow", "yaml"],
        ["json"],
    )


def test_pip_runs_isolated_wheels_only_into_a_staging_directory(libs_settings):
    pip = FakePip(wheels={"PyYAML": wheel("yaml", "PyYAML")})
    libraries = library_service(libs_settings, pip)
    assert libraries.missing(["yaml", "os"]) == ["yaml"]

    assert libraries.install(["yaml"]) == ["yaml"]

    ((argv, env, timeout),) = pip.calls
    assert argv[:5] == [sys.executable, "-I", "-m", "pip", "install"]
    assert {"--isolated", "--only-binary=:all:", "--no-cache-dir"} <= set(argv)
    assert argv[-2:] == ["--", "PyYAML"]
    target = Path(argv[argv.index("--target") + 1])
    assert target.parent.parent == libraries.directory.parent and not target.exists()
    assert set(env) == {"PATH", "LANG", "HOME", "TMPDIR", "PIP_CONFIG_FILE"}
    assert env["PIP_CONFIG_FILE"] == os.devnull and env["HOME"] == str(target.parent)
    assert 0 < timeout <= 60
    assert pip.lock_held == [True]
    assert libraries.missing(["yaml"]) == []
    assert (libraries.directory / "yaml.py").stat().st_mode & 0o444 == 0o444
    assert sorted(p.name for p in libraries.directory.parent.iterdir()) == ["python", "python.lock"]


def test_installed_libraries_are_not_installed_again(libs_settings):
    pip = FakePip(wheels={"six": wheel("six")})
    libraries = library_service(libs_settings, pip)
    libraries.install(["six"])
    assert libraries.install(["six"]) == []
    assert pip.installed == ["six"]


def test_a_failed_install_raises_its_essential_line_and_changes_nothing(libs_settings):
    libraries = library_service(libs_settings, FakePip(wheels={"six": wheel("six")}))
    libraries.install(["six"])
    before = snapshot(libraries.directory)
    noise = "Collecting half\n  Downloading half-1.0-py3-none-any.whl\n" * 50
    failing = FakePip(
        wheels={"half": wheel("half")},  # what pip had unpacked before failing
        returncode=1,
        output=noise + "ERROR: Could not find a version that satisfies the requirement half\n"
        "ERROR: No matching distribution found for half\n",
    )

    with pytest.raises(InvalidInput) as raised:
        library_service(libs_settings, failing).install(["half"])

    assert (
        raised.value.message
        == "could not install library 'half': no matching distribution found for half"
    )
    assert snapshot(libraries.directory) == before
    assert sorted(p.name for p in libraries.directory.parent.iterdir()) == ["python", "python.lock"]


def test_a_timed_out_install_says_so(libs_settings):
    libraries = library_service(libs_settings, FakePip(returncode=None, output="Collecting slow\n"))
    with pytest.raises(InvalidInput, match=r"library 'slow': pip did not finish within 60 seconds"):
        libraries.install(["slow"])


def test_the_failure_names_the_distribution_when_it_differs(libs_settings):
    libraries = library_service(libs_settings, FakePip(returncode=1, output="ERROR: boom\n"))
    with pytest.raises(InvalidInput) as raised:
        libraries.install(["cv2"])
    assert raised.value.message == (
        "could not install library 'cv2' (distribution 'opencv-python-headless'): boom"
    )


def test_a_distribution_without_the_module_is_refused(libs_settings):
    pip = FakePip(wheels={"lookalike": wheel("something_else", "lookalike")})
    libraries = library_service(libs_settings, pip)
    with pytest.raises(InvalidInput, match="provides no module named 'lookalike'"):
        libraries.install(["lookalike"])
    assert snapshot(libraries.directory) == {}


def test_present_files_are_kept_and_the_standard_library_is_never_shadowed(libs_settings):
    libraries = library_service(libs_settings, FakePip(wheels={"dep": wheel("dep", version="1.0")}))
    libraries.install(["dep"])
    hostile = wheel(
        "newlib",
        **{
            "email/__init__.py": "HIJACKED = 1\n",
            "typing.py": "HIJACKED = 1\n",
            "bin/newlib": "#!/bin/sh\n",
            "newlib_data/a.txt": "a\n",
        },
    )
    pip = FakePip(wheels={"newlib": {**hostile, **wheel("dep", version="2.0")}})

    assert library_service(libs_settings, pip).install(["newlib"]) == ["newlib"]

    installed = snapshot(libraries.directory)
    assert installed["dep.py"] == b"VERSION = '1.0'\n"
    assert "dep-2.0.dist-info" not in installed and "dep-1.0.dist-info" in installed
    assert {"newlib.py", "newlib-1.0.dist-info", "newlib_data/a.txt"} <= set(installed)
    assert not {"email", "typing.py", "bin"} & set(installed)


def test_without_pip_the_server_is_unavailable_for_installs(libs_settings, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "pip" else find_spec(name)
    )
    pip = FakePip()
    with pytest.raises(Unavailable, match="pip is not installed"):
        library_service(libs_settings, pip).install(["six"])
    assert pip.calls == []


def test_one_installer_at_a_time(tmp_path):
    path = tmp_path / "python.lock"
    with exclusive_lock(path, time.monotonic() + 5):
        assert locked(path)
        with (
            pytest.raises(Unavailable, match="still running"),
            exclusive_lock(path, time.monotonic()),
        ):
            pass
    assert not locked(path)


def test_run_pip_kills_at_the_deadline_and_caps_output(tmp_path):
    program = (
        "import sys, time\nsys.stdout.write('x' * 200000 + 'END')\n"
        "sys.stdout.flush()\ntime.sleep(60)\n"
    )
    started = time.monotonic()
    result = run_pip([sys.executable, "-c", program], tmp_path, {"PATH": "/usr/bin:/bin"}, 1)
    assert result.returncode is None
    assert time.monotonic() - started < 30
    assert len(result.output) == OUTPUT_CAP and result.output.endswith("END")


def test_run_pip_reports_the_exit_status(tmp_path):
    result = run_pip(
        [sys.executable, "-c", "print('hello'); raise SystemExit(3)"], tmp_path, {}, 30
    )
    assert (result.returncode, result.output) == (3, "hello\n")


def test_a_library_the_index_does_not_have(libs_settings):
    require_package_index()
    libraries = LibraryService(libs_settings, MemoryLibs())
    libraries.directory.mkdir(parents=True)
    with pytest.raises(InvalidInput) as raised:
        libraries.install([NO_SUCH_LIBRARY])
    message = raised.value.message
    assert message.startswith(f"could not install library {NO_SUCH_LIBRARY!r}: ")
    assert "no matching distribution" in message.lower() and "\n" not in message
    assert snapshot(libraries.directory) == {}


# --- codes: recorded, installed before they are saved -------------------------------


def code_service(services: Services, pip: PipRunner) -> CodeService:
    settings = services.settings
    libraries = LibraryService(settings, services.store.libs, pip=pip)
    return CodeService(services.store.codes, libraries=libraries, blacklist=settings.blacklist)


def new_code(source: str, language: str = "python") -> CodeInput:
    return CodeInput(name="n", type="endpoint", language=language, project_uuid="P1", source=source)


def recorded(services: Services) -> list[str]:
    return [lib.name for lib in services.store.libs.list("python")]


def test_codes_record_their_libraries_without_installing_by_default(services):
    pip = FakePip()
    codes = code_service(services, pip)
    code = codes.create(new_code("import yaml, os\nimport six\n"))
    codes.update(code.id, CodeInput(source="import requests\n"))
    codes.create(new_code("const x = require('leftpad')\n", language="javascript"))

    assert recorded(services) == ["requests", "six", "yaml"]
    assert pip.calls == []


@pytest.fixture
def auto_settings(tmp_path) -> Settings:
    return Settings(
        data_dir=str(tmp_path / "data"), auto_install_libs=True, libs_install_timeout=60
    )


@pytest.fixture
def auto_services(auto_settings) -> Iterator[Services]:
    services = build_services(auto_settings)
    ensure_schema_ready(services.store)
    yield services
    services.close()


def test_auto_install_installs_before_saving(auto_services):
    pip = FakePip(wheels={"six": wheel("six")})
    code = code_service(auto_services, pip).create(new_code("import six\n"))
    assert pip.installed == ["six"]
    assert auto_services.store.codes.get(code.id) is not None
    assert recorded(auto_services) == ["six"]


def test_a_failed_auto_install_saves_nothing(auto_services):
    codes = code_service(auto_services, FakePip(returncode=1, output="ERROR: nope\n"))
    stored = code_service(auto_services, FakePip()).create(new_code("print('hi')\n"))

    with pytest.raises(InvalidInput, match="could not install library 'broken': nope"):
        codes.create(new_code("import broken\n"))
    with pytest.raises(InvalidInput, match="library 'broken'"):
        codes.update(stored.id, CodeInput(source="import broken\nprint('changed')\n"))

    assert [code.id for code in auto_services.store.codes.list_by_project("P1")] == [stored.id]
    assert auto_services.store.codes.get(stored.id).source == "print('hi')\n"
    assert recorded(auto_services) == []


@contextmanager
def api_with_libraries(
    settings: Settings, pip: PipRunner
) -> Iterator[tuple[falcon.testing.TestClient, Services]]:
    """The API whose code service installs with ``pip`` (wired here, not by build_services)."""
    services = build_services(settings)
    try:
        ensure_schema_ready(services.store)
        services.codes = code_service(services, pip)
        yield falcon.testing.TestClient(create_app(services=services)), services
    finally:
        services.close()


def test_api_create_with_an_uninstallable_library_answers_400(auto_settings):
    require_package_index()
    with api_with_libraries(auto_settings, run_pip) as (client, services):
        query = {"name": "n", "language": "python", "type": "endpoint", "project_uuid": "P1"}
        result = client.simulate_post("/code", params=query, body=f"import {NO_SUCH_LIBRARY}\n")
        listing = client.simulate_get("/code", params={"project_uuid": "P1"})
        assert result.status_code == 400, result.text
        assert f"could not install library {NO_SUCH_LIBRARY!r}" in result.text
        assert "no matching distribution" in result.text.lower()
        assert listing.json == [] and recorded(services) == []


# --- the command ---------------------------------------------------------------------


def test_install_command_skips_and_refuses_without_pip(libs_settings, capsys):
    settings = libs_settings.replace(skiplist=("tensorflow",))
    assert install_command(settings, argparse.Namespace(names=["json", "tensorflow"])) == 0
    out = capsys.readouterr().out
    assert "skipped (SKIPLIST): tensorflow" in out and "already available: json" in out

    assert install_command(settings, argparse.Namespace(names=["not-a-module"])) == 1
    assert (
        "failed: could not install library 'not-a-module': not a module name"
        in capsys.readouterr().err
    )


def test_install_command_with_nothing_recorded(libs_settings, capsys):
    assert install_command(libs_settings, argparse.Namespace(names=[])) == 0
    assert capsys.readouterr().out == "no libraries to install\n"


def test_install_command_installs_what_codes_recorded(libs_settings, capsys):
    require_package_index()
    services = build_services(libs_settings)
    try:
        ensure_schema_ready(services.store)
        code_service(services, FakePip()).create(
            new_code(f"import six\nimport {NO_SUCH_LIBRARY}\n")
        )
    finally:
        services.close()

    assert install_command(libs_settings, argparse.Namespace(names=[])) == 1
    captured = capsys.readouterr()
    assert "installed: six" in captured.out
    assert f"failed: could not install library {NO_SUCH_LIBRARY!r}" in captured.err

    assert list_command(libs_settings, argparse.Namespace()) == 0
    rows = [line.split(maxsplit=1) for line in capsys.readouterr().out.splitlines()]
    assert rows == [[NO_SUCH_LIBRARY, "missing"], ["six", "installed"]]


def test_the_command_runs_in_its_own_process(tmp_path):
    env = child_env(
        {
            "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path / "data"),
            "FLOWS_CODE_ACTIONS_SKIPLIST": "tensorflow",
        }
    )
    command = cli_command("libs")
    listing = subprocess.run(
        [*command, "list"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    skipped = subprocess.run(
        [*command, "install", "tensorflow"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (listing.returncode, listing.stdout) == (0, "no libraries recorded\n"), listing.stderr
    assert (skipped.returncode, skipped.stdout) == (0, "skipped (SKIPLIST): tensorflow\n"), (
        skipped.stderr
    )
