"""Go code actions: compiled once per source, each run in a fresh sandbox."""

from __future__ import annotations

import dataclasses
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

from codeactions_core.errors import Unavailable
from codeactions_core.execution.outcome import describe_death, outcome_from_report
from codeactions_core.execution.runtime import Job, LogLine, Outcome, RuntimeHealth
from codeactions_core.execution.sandbox import (
    Report,
    SandboxLimits,
    SandboxSpec,
    Zygote,
    ZygoteConfig,
)
from codeactions_core.model import MAX_LOG_CONTENT, Code, LogType, RunStatus
from codeactions_core.settings import Settings
from codeactions_go.build import Build, Builder
from codeactions_go.cache import BinaryCache
from codeactions_go.toolchain import Toolchain, ToolchainError

log = logging.getLogger(__name__)

HARNESS = resources.files("codeactions_go") / "engine"
ADDRESS_HEADROOM = 1 << 30
"""The Go runtime reserves address space up front: it fails under RLIMIT_AS of 512 MiB.
GOMEMLIMIT and the memory cgroup bound what it really uses."""
BACKGROUND_BUILDS = 2
FATAL_ERROR = re.compile(r"^fatal error: .*$", re.MULTILINE)


def harness_files() -> dict[str, str]:
    """The harness's Go files, compiled into every code that defines Run."""
    return {
        item.name: item.read_text(encoding="utf-8")
        for item in HARNESS.iterdir()
        if item.name.endswith(".go")
    }


class GoRuntime:
    language = "go"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._limits = SandboxLimits.from_settings(settings)
        root = Path(settings.data_dir).resolve() / "go"
        self.builder = Builder(
            Toolchain(settings.go_binary, root),
            BinaryCache(root / "bin", settings.go_cache_entries),
            harness_files(),
        )
        self._zygote: Zygote | None = None
        self._background: ThreadPoolExecutor | None = None
        self._problem: str | None = "not started"
        self._warmed = False

    def start(self) -> None:
        """Find the toolchain and start the zygote; a failure shows in health(), never raises."""
        try:
            self.builder.toolchain.start()
            zygote = Zygote(ZygoteConfig.from_settings(self._settings), name="Go zygote")
            zygote.start()
        except (ToolchainError, Unavailable, KeyError, OSError) as exc:
            self._problem = getattr(exc, "message", None) or str(exc)
            log.error("the go runtime is unavailable: %s", self._problem)
            return
        self._zygote = zygote
        self._background = ThreadPoolExecutor(BACKGROUND_BUILDS, thread_name_prefix="go-build")
        self._warmed = False
        self._problem = None

    def stop(self) -> None:
        if self._background is not None:
            self._background.shutdown(wait=False, cancel_futures=True)
            self._background = None
        if self._zygote is not None:
            self._zygote.stop()
            self._zygote = None
        self._problem = "stopped"

    def health(self) -> RuntimeHealth:
        if self._problem or self._zygote is None:
            return RuntimeHealth(ready=False, message=self._problem or "not started")
        version = self.builder.toolchain.version
        return RuntimeHealth(ready=True, message=version, details=self._zygote.protections)

    def prepare(self, code: Code) -> None:
        """Start compiling in the background, so that the first run finds the binary.
        The first code saved also warms the build cache (servers without Go codes never do)."""
        if self._background is None:
            return
        try:
            self._background.submit(self._quietly, self.builder.build, code.source)
            if not self._warmed:
                self._warmed = True
                self._background.submit(self._quietly, self.builder.warm_up)
        except RuntimeError:  # stopping
            pass

    def execute(self, job: Job) -> Outcome:
        if self._zygote is None:
            raise Unavailable(f"the go runtime is unavailable: {self._problem}")
        for attempt in (1, 2):
            build = self.builder.build(job.code.source)
            if build.error is not None:
                return compile_failure(build.error)
            try:
                report = self._zygote.run(self._spec(job.code.timeout, build), job_document(job))
                break
            except Unavailable:
                # A binary evicted (e.g. by another server process) since the lookup is built again.
                if attempt == 2 or build.path is None or build.path.exists():
                    raise
        report = crash_report(program_report(report) if build.program else report)
        limit = 4 * self._limits.output
        return outcome_from_report(report, timeout=job.code.timeout, result_limit=limit)

    def _spec(self, timeout: float, build: Build) -> SandboxSpec:
        limits = dataclasses.replace(self._limits, memory=self._limits.memory + ADDRESS_HEADROOM)
        settings = self._settings
        return SandboxSpec(
            timeout=timeout,
            limits=limits,
            argv=["action"],
            executable=str(build.path),
            env={"GOMAXPROCS": "2", "GOMEMLIMIT": str(self._limits.cgroup_memory * 9 // 10)},
            network=settings.sandbox_network,
        )

    @staticmethod
    def _quietly(work: Any, *args: Any) -> None:
        try:
            work(*args)
        except Exception:
            log.exception("background go build failed")


def job_document(job: Job) -> dict[str, Any]:
    """What the harness reads on fd 3 (no source: the binary holds it)."""
    return {
        "run_id": job.run_id,
        "code_id": job.code.id,
        "params": job.params,
        "body": job.body,
        "headers": job.headers,
    }


def program_report(report: Report) -> Report:
    """A program with its own main() writes no outcome: exiting with 0 is its success."""
    finished = report.outcome is None and report.error is None and not report.timed_out
    if finished and report.signal is None and report.exit_code == 0:
        return dataclasses.replace(report, outcome={"ok": True, "has_run": False})
    return report


def crash_report(report: Report) -> Report:
    """The Go runtime states why it crashed (e.g. out of memory) above a long dump of
    every goroutine: keep that line in view of the run's result."""
    if report.outcome is not None or report.error or report.timed_out:
        return report
    reason = FATAL_ERROR.search(report.stderr)
    if reason is None:
        return report
    return dataclasses.replace(report, error=f"{reason[0]}\n\n{describe_death(report)}")


def compile_failure(message: str) -> Outcome:
    return Outcome(
        status=RunStatus.FAILED,
        result=message,
        logs=[LogLine(LogType.ERROR, message[:MAX_LOG_CONTENT])],
    )
