"""Hook implementations of the core itself (registered like any plugin, ``trylast``)."""

from __future__ import annotations

from codeactions_core import hookimpl
from codeactions_core.flows.steps import StepRunner
from codeactions_core.settings import Settings


@hookimpl(trylast=True)
def codeactions_step_runners(settings: Settings) -> list[StepRunner]:
    """The built-in step runners: ``http_call``, ``wait``, ``tabular`` and ``code``."""
    from codeactions_core.flows.runners import builtin_runners

    return builtin_runners(settings)
