"""Go code actions: compiled once per source (in the build sandbox), each run in a fresh sandbox."""

from __future__ import annotations

import dataclasses
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

from codeactions_core.errors import Unavailable
from codeactions_core.execution import (
    MIB,
    Job,
    LogLine,
    Outcome,
    Report,
    RuntimeHealth,
    SandboxedRuntime,
    SandboxLimits,
    SandboxSpec,
    Zygote,
    describe_death,
)
from codeactions_core.model import MAX_LOG_CONTENT, Code, LogType, RunStatus
from codeactions_core.settings import Settings
from codeactions_go.build import Build, Builder
from codeactions_go.cache import BinaryCache
from codeactions_go.settings import GoSettings
from codeactions_go.toolchain import ADDRESS_HEADROOM, Toolchain, ToolchainError

log = logging.getLogger(__name__)

HARNESS = resources.files("codeactions_go") / "engine"
BACKGROUND_BUILDS = 2
FATAL_ERROR = re.compile(r"^fatal error: .*$", re.MULTILINE)


def harness_files() -> dict[str, str]:
    """The harness's Go files, compiled into every code that defines Run."""
    return {
        item.name: item.read_text(encoding="utf-8")
        for item in HARNESS.iterdir()
        if item.name.endswith(".go")
    }


class GoRuntime(SandboxedRuntime):
    """Runs exec a cached binary by descriptor (their root needs nothing bound); builds
    run in the toolchain's own build zygote, with the build limits."""

    language = "go"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        root = Path(settings.data_dir).resolve() / "go"
        go = settings.plugin(GoSettings)
        self.builder = Builder(
            Toolchain(settings, root),
            BinaryCache(root / "bin", go.go_cache_entries, go.go_cache_mb * MIB),
            harness_files(),
        )
        self._background: ThreadPoolExecutor | None = None
        self._warmed = False

    def sandbox_limits(self, settings: Settings) -> SandboxLimits:
        """The Go runtime reserves address space up front: it fails under RLIMIT_AS of
        512 MiB. GOMEMLIMIT and the memory cgroup bound what it really uses."""
        limits = SandboxLimits.from_settings(settings)
        return dataclasses.replace(limits, memory=limits.memory + ADDRESS_HEADROOM)

    def find_toolchain(self) -> str:
        """``go version`` (outside the sandbox: no user input) and the build zygote."""
        try:
            return self.builder.toolchain.start()
        except ToolchainError as exc:
            self.builder.toolchain.stop()
            raise Unavailable(str(exc)) from None
        except Unavailable:
            self.builder.toolchain.stop()
            raise

    def start(self) -> None:
        """Start the runs' and the builds' zygotes; a failure shows in health(), never raises."""
        try:
            super().start()
        except Unavailable as exc:
            log.error("the go runtime is unavailable: %s", exc.message)
            self.builder.toolchain.stop()
            return
        if self.zygote is not None and self._background is None:
            self._background = ThreadPoolExecutor(BACKGROUND_BUILDS, thread_name_prefix="go-build")
            self._warmed = False

    def stop(self) -> None:
        if self._background is not None:
            self._background.shutdown(wait=False, cancel_futures=True)
            self._background = None
        super().stop()
        self.builder.toolchain.stop()

    def health(self) -> RuntimeHealth:
        health = super().health()
        if not health.ready:
            return health
        details = {**health.details, "build_sandbox": self.builder.toolchain.protections}
        return dataclasses.replace(health, details=details)

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

    def job_document(self, job: Job) -> dict[str, Any]:
        """What the harness reads on fd 3 (no source: the binary holds it)."""
        document = super().job_document(job)
        del document["source"]
        return document

    def run_job(self, zygote: Zygote, job: Job) -> Outcome:
        for attempt in (1, 2):
            build = self.builder.build(job.code.source)
            if build.error is not None:
                return compile_failure(build.error)
            try:
                report = zygote.run(self._spec(job.code.timeout, build), self.job_document(job))
                break
            except Unavailable:
                # A binary evicted (e.g. by another server process) since the lookup is built again.
                if attempt == 2 or build.path is None or build.path.exists():
                    raise
        report = crash_report(program_report(report) if build.program else report)
        return self.to_outcome(report, job)

    def _spec(self, timeout: float, build: Build) -> SandboxSpec:
        return SandboxSpec(
            timeout=timeout,
            limits=self.limits,
            argv=["action"],
            executable=str(build.path),
            env={"GOMAXPROCS": "2", "GOMEMLIMIT": str(self.limits.cgroup_memory * 9 // 10)},
            network=self.settings.sandbox_network,
        )

    @staticmethod
    def _quietly(work: Any, *args: Any) -> None:
        """A background build: its failure is the run's to report; here it is only logged."""
        try:
            result = work(*args)
        except Exception:
            log.exception("background go build failed")
            return
        if isinstance(result, Build) and result.error is not None:
            log.info("a saved Go code does not build: %s", result.error.splitlines()[0][:200])


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
