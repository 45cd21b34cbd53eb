"""Wheels of the plugins, built from copies: setuptools writes ``build/`` and ``*.egg-info``
into the folder it builds, which must never be the checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from codeactions_core.testing.server import child_env

BUILD_TIMEOUT = 600


def build_alone(plugin: Path, folder: Path) -> Path:
    """A wheel of the plugin built, in ``folder``, from a copy of its directory alone (nothing
    beside it, as ``pip install codeactions-<x>`` from an index gets it)."""
    alone = folder / "alone" / plugin.name
    shutil.copytree(
        plugin,
        alone,
        symlinks=True,
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"),
    )
    argv = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--wheel-dir",
        str(folder / "wheels"),
        str(alone),
    ]
    done = subprocess.run(
        argv,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        env=child_env({}),
        check=False,
    )
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    (wheel,) = (folder / "wheels").glob(f"{plugin.name.replace('-', '_')}-*.whl")
    return wheel


def install_into(source: Path, site: Path) -> Path:
    """pip-install the distribution in ``source`` (no dependencies) into ``site`` alone, a
    directory the test puts on the path: the suite's own environment stays untouched."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    return site
