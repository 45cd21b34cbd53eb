"""The settings of codeactions-go, declared through the ``codeactions_settings`` hook."""

from __future__ import annotations

from dataclasses import dataclass

from codeactions_core.settings import PluginSettings, at_least, setting


@dataclass(frozen=True)
class GoSettings(PluginSettings):
    """Settings of codeactions-go (the Go runtime):"""

    go_binary: str = setting("go", "Go toolchain of the Go runtime.")
    go_cache_entries: int = setting(
        256,
        "Compiled Go programs kept on disk (least recently used are removed).",
        parse=at_least(1),
    )
    go_cache_mb: int = setting(
        1024,
        "Bytes the compiled Go programs may take on disk together, in MiB (least recently "
        "used are removed); Go's own build cache gets the same budget, separately.",
        parse=at_least(16),
    )
    go_binary_max_mb: int = setting(
        64,
        "Largest compiled Go program kept, in MiB: a bigger one fails its build.",
        parse=at_least(4),
    )
    go_build_memory_mb: int = setting(
        1024, "Memory one sandboxed `go build` may use, in MiB.", parse=at_least(128)
    )
    go_build_timeout: int = setting(
        60, "Seconds one sandboxed `go build` may take.", parse=at_least(5)
    )
    go_max_concurrent_builds: int = setting(
        2, "`go build`s one server process runs at once (the others wait).", parse=at_least(1)
    )
