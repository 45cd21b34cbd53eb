"""codeactions-python: the Python runtime."""

from __future__ import annotations

from codeactions_core import hookimpl
from codeactions_core.settings import Settings
from codeactions_python.runtime import PythonRuntime

__all__ = ["PythonRuntime", "codeactions_runtimes"]


@hookimpl(trylast=True)
def codeactions_runtimes(settings: Settings) -> list[PythonRuntime]:
    return [PythonRuntime(settings)]
