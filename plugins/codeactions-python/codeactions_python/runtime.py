"""Python code actions, each run forked from a warm zygote that preloaded the harness."""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from codeactions_core.execution import Job, SandboxedRuntime
from codeactions_core.settings import Settings

HARNESS = resources.files("codeactions_python") / "engine" / "codeactions_engine.py"
LIBS_INSIDE = "/opt/codeactions/libs/python"
"""Where the libs directory appears inside the sandbox (nothing of the data directory does)."""


def libs_dir(settings: Settings) -> str:
    """Where installed Python libraries live: importable, never writable, by user code."""
    return str(Path(settings.data_dir).resolve() / "libs" / "python")


def stdlib_dirs() -> list[str]:
    """The standard library and its compiled modules: what a forked run may still import.
    Taken from the base installation, never a virtual environment's, and without any
    site-packages: the server's own packages stay out of view."""
    folders = {os.path.dirname(os.__file__), sysconfig.get_config_var("DESTSHARED") or ""}
    return sorted(os.path.realpath(folder) for folder in folders if folder)


class PythonRuntime(SandboxedRuntime):
    language = "python"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.libs = libs_dir(settings)
        self.warm_size = min(settings.worker_pool_size, 4)

    def find_toolchain(self) -> str:
        # The zygote builds the sandbox's root once, from the directories that exist
        # then: the libs directory must be one of them.
        os.makedirs(self.libs, mode=0o755, exist_ok=True)
        return sys.version.split()[0]

    def binds(self) -> Sequence[str | tuple[str, str]]:
        # The harness is not bound: the zygote loaded it before entering the root.
        return (*stdlib_dirs(), (self.libs, LIBS_INSIDE))

    def masks(self) -> Sequence[str]:
        return [os.path.join(path, "site-packages") for path in stdlib_dirs()]

    def preload(self) -> Mapping[str, str]:
        return {"path": str(HARNESS), "module": "codeactions_engine", "entry": "serve"}

    def job_document(self, job: Job) -> dict[str, Any]:
        zygote = self.zygote
        in_root = zygote is not None and zygote.protections.get("filesystem") == "allowlist root"
        return {**super().job_document(job), "python_path": [LIBS_INSIDE if in_root else self.libs]}
