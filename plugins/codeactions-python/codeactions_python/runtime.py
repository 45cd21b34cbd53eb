"""Python code actions, each run forked from a warm zygote that preloaded the harness."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from codeactions_core.errors import Unavailable
from codeactions_core.execution import Job, SandboxedRuntime
from codeactions_core.libs import libs_dir
from codeactions_core.settings import Settings

HARNESS = resources.files("codeactions_python") / "engine" / "codeactions_engine.py"
LIBS_INSIDE = "/opt/codeactions/libs/python"
"""Where the libs directory appears inside the sandbox (nothing of the data directory does)."""


def stdlib_dirs() -> list[str]:
    """The standard library and its compiled modules: what a forked run may still import.
    Taken from the base installation, never a virtual environment's, and without any
    site-packages: the server's own packages stay out of view."""
    folders = {os.path.dirname(os.__file__), sysconfig.get_config_var("DESTSHARED") or ""}
    return sorted(os.path.realpath(folder) for folder in folders if folder)


ASK_INTERPRETER = (
    "import json, os, sys, sysconfig; print(json.dumps({'version': sys.version.split()[0], "
    "'info': list(sys.version_info[:2]), "
    "'dirs': [os.path.dirname(os.__file__), sysconfig.get_config_var('DESTSHARED') or '']}))"
)


def describe_interpreter(binary: str) -> tuple[str, list[str]]:
    """Another interpreter's version and standard-library folders (asked of it); Unavailable
    when it cannot run or is older than 3.11."""
    try:
        answer = subprocess.run(
            [shutil.which(binary) or binary, "-I", "-S", "-c", ASK_INTERPRETER],
            capture_output=True,
            text=True,
            timeout=30,
            env={},
            check=False,
        )
        found = json.loads(answer.stdout) if answer.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        found = None
    if not found:
        raise Unavailable(f"PYTHON_BINARY {binary!r} cannot be run as a Python interpreter")
    if tuple(found["info"]) < (3, 11):
        raise Unavailable(f"PYTHON_BINARY {binary!r} is Python {found['version']}; 3.11+ is needed")
    dirs = sorted({os.path.realpath(folder) for folder in found["dirs"] if folder})
    return found["version"], dirs


class PythonRuntime(SandboxedRuntime):
    language = "python"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.libs = str(libs_dir(settings))
        self.warm_size = min(settings.worker_pool_size, 4)
        binary = settings.python_binary
        self.binary = (shutil.which(binary) or binary) if binary else sys.executable
        self.stdlib = stdlib_dirs()

    def find_toolchain(self) -> str:
        # The zygote builds the sandbox's root once, from the directories that exist
        # then: the libs directory must be one of them.
        os.makedirs(self.libs, mode=0o755, exist_ok=True)
        if not self.settings.python_binary:
            return sys.version.split()[0]
        version, self.stdlib = describe_interpreter(self.settings.python_binary)
        return version

    def interpreter(self) -> Sequence[str]:
        return (self.binary,)

    def binds(self) -> Sequence[str | tuple[str, str]]:
        # The harness is not bound: the zygote loaded it before entering the root.
        return (*self.stdlib, (self.libs, LIBS_INSIDE))

    def masks(self) -> Sequence[str]:
        return [os.path.join(path, "site-packages") for path in self.stdlib]

    def preload(self) -> Mapping[str, str]:
        return {"path": str(HARNESS), "module": "codeactions_engine", "entry": "serve"}

    def job_document(self, job: Job) -> dict[str, Any]:
        zygote = self.zygote
        in_root = zygote is not None and zygote.protections.get("filesystem") == "allowlist root"
        return {**super().job_document(job), "python_path": [LIBS_INSIDE if in_root else self.libs]}
