"""Python code actions, each run forked from a warm zygote that preloaded the harness."""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

from codeactions_core.errors import Unavailable
from codeactions_core.execution.outcome import outcome_from_report
from codeactions_core.execution.runtime import Job, Outcome, RuntimeHealth
from codeactions_core.execution.sandbox import SandboxLimits, SandboxSpec, Zygote, ZygoteConfig
from codeactions_core.execution.warm import WarmPool
from codeactions_core.model import Code
from codeactions_core.settings import Settings

MAX_TIMEOUT = 300
HARNESS = resources.files("codeactions_python") / "engine" / "codeactions_engine.py"


def libs_dir(settings: Settings) -> str:
    """Where installed Python libraries live: importable, never writable, by user code."""
    return str(Path(settings.data_dir).resolve() / "libs" / "python")


class PythonRuntime:
    language = "python"

    def __init__(self, settings: Settings) -> None:
        self._limits = SandboxLimits.from_settings(settings)
        self._libs = libs_dir(settings)
        self._zygote = Zygote(
            ZygoteConfig.from_settings(
                settings,
                expose=(os.path.realpath(sys.base_prefix), self._libs),
                preload={"path": str(HARNESS), "module": "codeactions_engine", "entry": "serve"},
            ),
            name="Python zygote",
        )
        # Warm sandboxes are started before their job is known: they get the
        # longest timeout, and each job brings its own.
        spec = SandboxSpec(timeout=MAX_TIMEOUT, limits=self._limits, network=settings.sandbox_network)
        self._warm = WarmPool(self._zygote, spec, size=min(settings.worker_pool_size, 4))
        self._problem: str | None = "not started"

    def start(self) -> None:
        # The zygote builds the sandbox's view of the file system once, from the
        # directories that exist then: the libs directory must be one of them.
        os.makedirs(self._libs, mode=0o755, exist_ok=True)
        try:
            self._zygote.start()
        except Unavailable as exc:
            self._problem = exc.message
            raise
        self._warm.start()
        self._problem = None

    def stop(self) -> None:
        self._warm.stop()
        self._zygote.stop()
        self._problem = "stopped"

    def health(self) -> RuntimeHealth:
        if self._problem:
            return RuntimeHealth(ready=False, message=self._problem)
        return RuntimeHealth(ready=True, message=sys.version.split()[0], details=self._zygote.protections)

    def prepare(self, code: Code) -> None:
        """Python needs nothing ahead of a run."""

    def execute(self, job: Job) -> Outcome:
        document = {
            "run_id": job.run_id,
            "code_id": job.code.id,
            "source": job.code.source,
            "params": job.params,
            "body": job.body,
            "headers": job.headers,
            "python_path": [self._libs],
        }
        report = self._warm.run(document, timeout=job.code.timeout)
        return outcome_from_report(report, timeout=job.code.timeout, result_limit=4 * self._limits.output)
