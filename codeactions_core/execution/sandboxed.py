"""The base of every sandboxed language runtime: job → warm (or fresh) sandbox → outcome.

A language plugin subclasses :class:`SandboxedRuntime` and says only what is
particular to it: what its sandboxes need bound into their empty root, how to
find its toolchain, the spec of its sandboxes, and (rarely) how to read a
report. Starting the zygote, the warm pool, health, and the run itself are
done here, once for every language.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from codeactions_core.errors import Unavailable
from codeactions_core.execution.network import SandboxNetwork
from codeactions_core.execution.outcome import outcome_from_report
from codeactions_core.execution.runtime import Job, Outcome, RuntimeHealth
from codeactions_core.execution.sandbox import (
    Report,
    SandboxLimits,
    SandboxSpec,
    Zygote,
)
from codeactions_core.execution.warm import WarmPool
from codeactions_core.execution.zygote_config import ZygoteConfig
from codeactions_core.model import MAX_TIMEOUT, Code
from codeactions_core.settings import Settings

log = logging.getLogger(__name__)


class SandboxedRuntime:
    """A :class:`~codeactions_core.execution.runtime.Runtime` whose runs execute in the sandbox."""

    language = ""
    warm_size = 0
    """Sandboxes kept started ahead of need (0: each run starts its own)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.limits = self.sandbox_limits(settings)
        self.network = SandboxNetwork.for_settings(settings)
        self.zygote: Zygote | None = None
        self.version = ""
        self._warm: WarmPool | None = None
        self._lock = threading.Lock()
        self._problem: str | None = "not started"

    # What a language says about itself -------------------------------------------------

    def sandbox_limits(self, settings: Settings) -> SandboxLimits:
        """The limits of this language's sandboxes (e.g. with the address space its VM reserves)."""
        return SandboxLimits.from_settings(settings)

    def find_toolchain(self) -> str:
        """Locate the interpreter or compiler; its version text, or Unavailable saying why not."""
        return ""

    def interpreter(self) -> Sequence[str]:
        """The command the zygote runs under (a Python 3.11+ interpreter; default the server's)."""
        return (sys.executable,)

    def binds(self) -> Sequence[str | tuple[str, str]]:
        """Host paths this language needs, read-only, in its sandboxes' otherwise empty root
        (the shared-library folders, CA certificates and time zones are always there): a
        path appears at the same path, a ``(host path, path inside)`` pair where it says."""
        return ()

    def masks(self) -> Sequence[str]:
        """Folders inside those binds to cover with an empty one."""
        return ()

    def writable_binds(self) -> Sequence[str | tuple[str, str]]:
        """Host folders bound read-write (they must exist when the runtime starts)."""
        return ()

    def preload(self) -> Mapping[str, str] | None:
        """A harness the zygote imports once and each sandbox calls (Python only)."""
        return None

    def warm_spec(self) -> SandboxSpec:
        """The spec of sandboxes started ahead of need: they start before their job is known,
        so they get the longest timeout (MAX_TIMEOUT), and each job brings its own."""
        return SandboxSpec(
            timeout=MAX_TIMEOUT, limits=self.limits, network=self.settings.sandbox_network
        )

    def job_document(self, job: Job) -> dict[str, Any]:
        """What the harness reads on its job descriptor."""
        return {
            "run_id": job.run_id,
            "code_id": job.code.id,
            "source": job.code.source,
            "params": job.params,
            "body": job.body,
            "headers": job.headers,
            "secrets": job.secrets,
        }

    def to_outcome(self, report: Report, job: Job) -> Outcome:
        return outcome_from_report(
            report, timeout=job.code.timeout, result_limit=4 * self.limits.output
        )

    def run_job(self, zygote: Zygote, job: Job) -> Outcome:
        """Run one job; by default in a warm sandbox (or a fresh one of the warm spec)."""
        warm = self._warm
        if warm is None:
            raise Unavailable(f"the {self.language} runtime is unavailable: {self._problem}")
        return self.to_outcome(warm.run(self.job_document(job), timeout=job.code.timeout), job)

    # Done here for every language ------------------------------------------------------

    def zygote_config(self) -> ZygoteConfig:
        config = ZygoteConfig.from_settings(
            self.settings,
            binds=self.binds(),
            writable=self.writable_binds(),
            preload=self.preload(),
        )
        return dataclasses.replace(config, masks=(*config.masks, *self.masks()))

    def start(self) -> None:
        """Find the toolchain and start the zygote and warm sandboxes. A missing toolchain
        only shows in health(); a zygote that cannot start raises Unavailable."""
        with self._lock:
            if self.zygote is not None:
                return
            try:
                self.version = self.find_toolchain()
            except Unavailable as exc:
                log.warning("the %s runtime is unavailable: %s", self.language, exc.message)
                self._problem = exc.message
                return
            self.network.start()
            zygote = Zygote(
                self.zygote_config(),
                name=f"{self.language} zygote",
                network=self.network,
                interpreter=self.interpreter(),
            )
            try:
                zygote.start()
            except Unavailable as exc:
                self._problem = exc.message
                raise
            self.zygote = zygote  # warm_spec() may ask what the zygote could set up
            try:
                self._warm = WarmPool(zygote, self.warm_spec(), size=self.warm_size)
                if self.warm_size:
                    self._warm.start()
            except BaseException:
                self.zygote = None
                raise
            self._problem = None

    def stop(self) -> None:
        with self._lock:
            if self._warm is not None:
                self._warm.stop()
            if self.zygote is not None:
                self.zygote.stop()
            self.zygote = self._warm = None
            self._problem = "stopped"

    def health(self) -> RuntimeHealth:
        problem, zygote = self._problem, self.zygote
        if problem or zygote is None:
            return RuntimeHealth(ready=False, message=problem or "not started")
        return RuntimeHealth(ready=True, message=self.version, details=zygote.protections)

    def prepare(self, code: Code) -> None:
        """A code was saved; most languages need nothing ahead of a run."""

    def execute(self, job: Job) -> Outcome:
        zygote = self.zygote
        if zygote is None:
            raise Unavailable(f"the {self.language} runtime is unavailable: {self._problem}")
        return self.run_job(zygote, job)
