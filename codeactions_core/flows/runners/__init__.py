"""The built-in step runners: ``http_call``, ``wait``, ``tabular`` and ``code``."""

from __future__ import annotations

from codeactions_core.flows.runners.code import CodeRunner
from codeactions_core.flows.runners.http_call import HttpCallRunner
from codeactions_core.flows.runners.tabular import TabularRunner
from codeactions_core.flows.runners.wait import WaitRunner
from codeactions_core.flows.steps import StepRunner
from codeactions_core.settings import Settings


def builtin_runners(settings: Settings) -> list[StepRunner]:
    """One runner of each built-in type (``settings`` is not needed yet)."""
    return [HttpCallRunner(), WaitRunner(), TabularRunner(), CodeRunner()]


__all__ = ["CodeRunner", "HttpCallRunner", "TabularRunner", "WaitRunner", "builtin_runners"]
