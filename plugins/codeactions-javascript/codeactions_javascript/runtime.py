"""JavaScript code actions, each run in a sandboxed Node.js process started ahead of need."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from importlib import resources

from codeactions_core.errors import Unavailable
from codeactions_core.execution.outcome import outcome_from_report
from codeactions_core.execution.runtime import Job, Outcome, RuntimeHealth
from codeactions_core.execution.sandbox import MIB, SandboxLimits, SandboxSpec, Zygote, ZygoteConfig
from codeactions_core.execution.warm import WarmPool
from codeactions_core.model import Code
from codeactions_core.settings import Settings
from codeactions_javascript.node import Node, find_node

log = logging.getLogger(__name__)

MAX_TIMEOUT = 300
V8_HEADROOM = 3 * 1024 * MIB
"""Address space V8 reserves beyond its heap; the heap flag and the memory cgroup bound real use."""
HARNESS = os.path.realpath(str(resources.files("codeactions_javascript") / "engine" / "harness.js"))


def node_limits(settings: Settings) -> SandboxLimits:
    """The configured limits, with the address-space headroom node needs to start at all."""
    limits = SandboxLimits.from_settings(settings)
    return dataclasses.replace(limits, memory=limits.memory + V8_HEADROOM)


def node_spec(node: Node, settings: Settings, limits: SandboxLimits) -> SandboxSpec:
    """A sandbox running the harness. Warm processes start before their job is known:
    they get the longest timeout, and each job brings its own."""
    return SandboxSpec(
        timeout=MAX_TIMEOUT,
        limits=limits,
        argv=(node.executable, f"--max-old-space-size={settings.sandbox_memory_mb}", *node.flags,
              HARNESS),
        executable=node.executable,
        network=settings.sandbox_network,
    )


class JavaScriptRuntime:
    language = "javascript"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._limits = node_limits(settings)
        self._lock = threading.Lock()
        self._node: Node | None = None
        self._zygote: Zygote | None = None
        self._warm: WarmPool | None = None
        self._problem: str | None = "not started"

    def start(self) -> None:
        """Find node, start the zygote and the warm processes; a missing node is only reported."""
        with self._lock:
            if self._warm is not None:
                return
            try:
                node = find_node(self._settings.node_binary)
            except Unavailable as exc:
                log.warning("the javascript runtime is unavailable: %s", exc.message)
                self._problem = exc.message
                return
            expose = (os.path.dirname(HARNESS), node.home)  # bound back where hidden (e.g. /root)
            config = ZygoteConfig.from_settings(self._settings, expose=expose)
            zygote = Zygote(config, name="JavaScript zygote")
            try:
                zygote.start()
            except Unavailable as exc:
                self._problem = exc.message
                raise
            spec = node_spec(node, self._settings, self._limits)
            warm = WarmPool(zygote, spec, size=self._settings.node_warm_processes)
            warm.start()
            self._node, self._zygote, self._warm, self._problem = node, zygote, warm, None

    def stop(self) -> None:
        with self._lock:
            if self._warm is not None:
                self._warm.stop()
            if self._zygote is not None:
                self._zygote.stop()
            self._zygote = self._warm = None
            self._problem = "stopped"

    def health(self) -> RuntimeHealth:
        problem, node, zygote = self._problem, self._node, self._zygote
        if problem or node is None or zygote is None:
            return RuntimeHealth(ready=False, message=problem or "not started")
        return RuntimeHealth(ready=True, message=f"node {node.version}", details=zygote.protections)

    def prepare(self, code: Code) -> None:
        """Node compiles the source at run time: nothing to do ahead."""

    def execute(self, job: Job) -> Outcome:
        warm = self._warm
        if warm is None:
            raise Unavailable(f"the javascript runtime is unavailable: {self._problem}")
        document = {
            "run_id": job.run_id,
            "code_id": job.code.id,
            "source": job.code.source,
            "params": job.params,
            "body": job.body,
            "headers": job.headers,
        }
        report = warm.run(document, timeout=job.code.timeout)
        return outcome_from_report(
            report, timeout=job.code.timeout, result_limit=4 * self._limits.output
        )
