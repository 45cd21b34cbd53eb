"""The image works (issue 12, item 10), reproduced without a container engine.

Exactly what the Dockerfile copies goes into a temporary directory and is installed, not
editable, into a fresh venv as its `RUN pip install` line does; `codeactions serve` from that
venv then runs a code in each language. And every plugin is built as a wheel from its own
directory alone (what `pip install codeactions-<x>` from an index gets), checked for the files
it must carry, installed into that venv, and its tests run against it.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import requests

from codeactions_core.testing.server import child_env, free_port, stop_process
from tests.support.wheels import build_alone

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
INSTALL_TIMEOUT = 600
PLUGIN_FILES = {
    "codeactions-python": ["codeactions_python/engine/codeactions_engine.py"],
    "codeactions-javascript": ["codeactions_javascript/engine/harness.js"],
    "codeactions-go": ["codeactions_go/engine/harness.go", "codeactions_go/engine/engine.go"],
    "codeactions-sql": [
        "codeactions_sql/migrations/000001_create_codes_table.up.sql",
        "codeactions_sql/migrations/sqlite/000009_create_flows_tables.up.sql",
    ],
}
TESTED_AGAINST_WHEELS = {
    "codeactions-python": ["test_engine_api.py", "test_isolation.py"],
    "codeactions-sql": [],
    "codeactions-auth-token": [],
}
"""Plugins whose own tests (these files; [] for all) run here against their wheel, within the
suite's time budget; `tox` runs every plugin's whole suite so."""


def dockerfile_copies() -> list[tuple[list[str], str]]:
    """The Dockerfile's COPY instructions before its pip install: (sources, destination)."""
    copies = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("RUN pip install"):
            return copies
        if line.startswith("COPY "):
            *sources, destination = shlex.split(line)[1:]
            copies.append((sources, destination))
    raise AssertionError("the Dockerfile has no `RUN pip install` line")


def dockerfile_install() -> list[str]:
    """The arguments of the Dockerfile's `RUN pip install ...`."""
    (line,) = [
        line
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("RUN pip install")
    ]
    return shlex.split(line)[3:]


def copy_build_context(context: Path) -> None:
    """What the Dockerfile's COPY lines put in its WORKDIR (symlinks copied as symlinks)."""
    for sources, destination in dockerfile_copies():
        for source in sources:
            origin = ROOT / source
            target = (
                context / destination / origin.name
                if destination.endswith("/")
                else context / destination
            )
            if origin.is_dir():
                shutil.copytree(
                    origin,
                    target,
                    symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"),
                )
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)


def run(argv: list[str], cwd: Path, timeout: float = INSTALL_TIMEOUT) -> str:
    done = subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env({}),
        check=False,
    )
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    """A fresh venv holding exactly what the image's `pip install` installs; its bin folder."""
    base = tmp_path_factory.mktemp("image")
    context = base / "opt-codeactions"
    context.mkdir()
    copy_build_context(context)
    run([sys.executable, "-m", "venv", str(base / "venv")], base)
    bin_dir = base / "venv" / "bin"
    # As the Dockerfile's RUN line, in its WORKDIR (the shell expands ./plugins/*).
    arguments = []
    for argument in dockerfile_install():
        if "*" in argument:
            matches = sorted(context.glob(argument.removeprefix("./")))
            arguments += [f"./{path.relative_to(context)}" for path in matches]
        else:
            arguments.append(argument)
    run([str(bin_dir / "pip"), "install", "--quiet", *arguments], context)
    return bin_dir


def site_packages(bin_dir: Path) -> Path:
    (folder,) = (bin_dir.parent / "lib").glob("python3*/site-packages")
    return folder


def test_the_installed_image_carries_every_harness_and_migration(image):
    installed = site_packages(image)
    for files in PLUGIN_FILES.values():
        for name in files:
            path = installed / name
            assert path.is_file() and not path.is_symlink(), name
    assert (installed / "codeactions_core/presets/legacy.txt").is_file()


def test_the_installed_image_serves_and_runs_every_language(image, tmp_path):
    port = free_port()
    log_path = tmp_path / "serve.log"
    settings = {
        "FLOWS_CODE_ACTIONS_HOST": "127.0.0.1",
        "FLOWS_CODE_ACTIONS_PORT": str(port),
        "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path / "data"),
        "FLOWS_CODE_ACTIONS_WEB_WORKERS": "2",
    }
    with open(log_path, "wb") as log_file:  # from a folder where no source of ours is importable
        process = subprocess.Popen(
            [str(image / "codeactions"), "serve"],
            cwd=tmp_path,
            env=child_env(settings),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)  # polling while the server boots
        sources = {
            "python": 'def Run(engine):\n    engine.result.set("py " + engine.params.get("n"))\n',
            "javascript": (
                'exports.Run = (engine) => engine.result.set("js " + engine.params.get("n"));\n'
            ),
            "go": (
                "package main\n\nfunc Run(engine *Engine) {\n"
                '\tengine.Result.Set("go "+engine.Params.Get("n"), 200, "text")\n}\n'
            ),
        }
        toolchains = {"python": sys.executable, "javascript": "node", "go": "go"}
        for language, source in sources.items():
            if not shutil.which(toolchains[language]):
                continue  # that toolchain is not on this machine
            created = requests.post(
                f"{base}/code",
                data=source.encode(),
                timeout=120,
                params={
                    "name": language,
                    "language": language,
                    "type": "endpoint",
                    "project_uuid": "P",
                },
            )
            assert created.status_code == 201, created.text
            ran = requests.get(
                f"{base}/action/endpoint/{created.json()['id']}", params={"n": "1"}, timeout=120
            )
            assert (ran.status_code, ran.text) == (200, source.split('"')[1] + "1"), ran.text
    finally:
        stop_process(process)
    assert not re.search(r"FileNotFoundError|Worker failed to boot", log_path.read_text())


@pytest.mark.parametrize(
    "plugin",
    sorted(
        path.name for path in (ROOT / "plugins").iterdir() if (path / "pyproject.toml").is_file()
    ),
)
def test_each_plugin_wheel_from_its_own_directory_is_complete(plugin, tmp_path):
    wheel = build_alone(ROOT / "plugins" / plugin, tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in PLUGIN_FILES.get(plugin, []):
        assert name in names, name
    if plugin == "codeactions-sql":
        shipped = {name for name in names if name.endswith(".sql")}
        source = ROOT / "plugins/codeactions-sql/codeactions_sql/migrations"
        assert shipped == {
            f"codeactions_sql/migrations/{p.relative_to(source)}" for p in source.rglob("*.sql")
        }


@pytest.mark.parametrize("plugin", sorted(TESTED_AGAINST_WHEELS))
def test_a_plugin_wheel_passes_its_own_tests(plugin, image, tmp_path):
    wheel = build_alone(ROOT / "plugins" / plugin, tmp_path)
    python = str(image / "python")
    run([python, "-m", "pip", "install", "--quiet", "pytest>=8", "requests"], tmp_path)
    run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", str(wheel)],
        tmp_path,
    )
    tests = tmp_path / "tests"  # the tests alone: the package comes from the wheel
    shutil.copytree(
        ROOT / "plugins" / plugin / "tests", tests, ignore=shutil.ignore_patterns("__pycache__")
    )
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\naddopts = --import-mode=importlib\n"
        "markers =\n    postgres: PostgreSQL\n    e2e: real processes\n"
    )
    selected = [str(tests / name) for name in TESTED_AGAINST_WHEELS[plugin]] or [str(tests)]
    output = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *selected], tmp_path)
    assert re.search(r"\d+ passed", output) and " failed" not in output, output
    shown = run(
        [python, "-c", f"import {plugin.replace('-', '_')} as p; print(p.__file__)"], tmp_path
    )
    assert str(site_packages(image)) in shown
