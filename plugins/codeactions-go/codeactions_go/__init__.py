"""codeactions-go: the Go runtime."""

from __future__ import annotations

from codeactions_core import hookimpl
from codeactions_core.settings import Settings
from codeactions_go.runtime import GoRuntime
from codeactions_go.settings import GoSettings

__all__ = ["GoRuntime", "GoSettings", "codeactions_runtimes", "codeactions_settings"]


@hookimpl(trylast=True)
def codeactions_runtimes(settings: Settings) -> list[GoRuntime]:
    return [GoRuntime(settings)]


@hookimpl(trylast=True)
def codeactions_settings() -> list[type[GoSettings]]:
    return [GoSettings]
