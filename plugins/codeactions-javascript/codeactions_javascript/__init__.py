"""codeactions-javascript: the JavaScript (Node.js) runtime."""

from __future__ import annotations

from codeactions_core import hookimpl
from codeactions_core.settings import Settings
from codeactions_javascript.runtime import JavaScriptRuntime

__all__ = ["JavaScriptRuntime", "codeactions_runtimes"]


@hookimpl(trylast=True)
def codeactions_runtimes(settings: Settings) -> list[JavaScriptRuntime]:
    return [JavaScriptRuntime(settings)]
