"""codeactions-javascript: the JavaScript (Node.js) runtime."""

from __future__ import annotations

from codeactions_core import hookimpl
from codeactions_core.settings import Settings
from codeactions_javascript.runtime import JavaScriptRuntime
from codeactions_javascript.settings import NodeSettings

__all__ = ["JavaScriptRuntime", "NodeSettings", "codeactions_runtimes", "codeactions_settings"]


@hookimpl(trylast=True)
def codeactions_runtimes(settings: Settings) -> list[JavaScriptRuntime]:
    return [JavaScriptRuntime(settings)]


@hookimpl(trylast=True)
def codeactions_settings() -> list[type[NodeSettings]]:
    return [NodeSettings]
