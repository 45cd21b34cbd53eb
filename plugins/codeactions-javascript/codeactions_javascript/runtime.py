"""JavaScript code actions, each run in a sandboxed Node.js process started ahead of need."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from importlib import resources

from codeactions_core.execution import (
    MAX_TIMEOUT,
    MIB,
    SandboxedRuntime,
    SandboxLimits,
    SandboxSpec,
)
from codeactions_core.settings import Settings
from codeactions_javascript.node import Node, find_node
from codeactions_javascript.settings import NodeSettings

V8_HEADROOM = 3 * 1024 * MIB
"""Address space V8 reserves beyond its heap; the heap flag and the memory cgroup bound real use."""
HARNESS = os.path.realpath(str(resources.files("codeactions_javascript") / "engine" / "harness.js"))
HARNESS_INSIDE = "/opt/codeactions/engines/javascript"
"""Where the harness folder appears in an allowlist root: a fixed path, never under the
run's private /tmp (an installation under /tmp would otherwise be covered by it)."""


def node_limits(settings: Settings) -> SandboxLimits:
    """The configured limits, with the address-space headroom node needs to start at all."""
    limits = SandboxLimits.from_settings(settings)
    return dataclasses.replace(limits, memory=limits.memory + V8_HEADROOM)


def node_spec(
    node: Node, settings: Settings, limits: SandboxLimits, harness: str = HARNESS
) -> SandboxSpec:
    """A sandbox running the harness (warm: the longest timeout; each job brings its own)."""
    return SandboxSpec(
        timeout=MAX_TIMEOUT,
        limits=limits,
        argv=(
            node.executable,
            f"--max-old-space-size={settings.sandbox_memory_mb}",
            *node.flags,
            harness,
        ),
        executable=node.executable,
        network=settings.sandbox_network,
    )


class JavaScriptRuntime(SandboxedRuntime):
    language = "javascript"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.warm_size = settings.plugin(NodeSettings).node_warm_processes
        self.node: Node | None = None

    def sandbox_limits(self, settings: Settings) -> SandboxLimits:
        return node_limits(settings)

    def find_toolchain(self) -> str:
        self.node = find_node(self.settings.plugin(NodeSettings).node_binary)
        return f"node {self.node.version}"

    def binds(self) -> Sequence[str | tuple[str, str]]:
        assert self.node is not None
        return (self.node.executable, (os.path.dirname(HARNESS), HARNESS_INSIDE))

    def warm_spec(self) -> SandboxSpec:
        assert self.node is not None
        zygote = self.zygote
        in_root = zygote is not None and zygote.protections.get("filesystem") == "allowlist root"
        harness = f"{HARNESS_INSIDE}/{os.path.basename(HARNESS)}" if in_root else HARNESS
        return node_spec(self.node, self.settings, self.limits, harness)
