"""codeactions-go: the Go runtime."""

from __future__ import annotations

from codeactions_core import hookimpl
from codeactions_core.settings import Settings
from codeactions_go.runtime import GoRuntime

__all__ = ["GoRuntime", "codeactions_runtimes"]


@hookimpl(trylast=True)
def codeactions_runtimes(settings: Settings) -> list[GoRuntime]:
    return [GoRuntime(settings)]
