"""The built-in step runners: ``http_call``, ``wait``, ``tabular`` and ``code``."""

from __future__ import annotations

from codeactions_core.egress import EgressPolicy
from codeactions_core.flows.runners.code import CodeRunner
from codeactions_core.flows.runners.common import Egress
from codeactions_core.flows.runners.http_call import HttpCallRunner
from codeactions_core.flows.runners.tabular import TabularRunner
from codeactions_core.flows.runners.wait import WaitRunner
from codeactions_core.flows.steps import StepRunner
from codeactions_core.settings import Settings


def builtin_runners(settings: Settings) -> list[StepRunner]:
    """One runner of each built-in type; HTTP ones obey FLOW_EGRESS_ALLOW and FLOW_EGRESS_DENY."""
    egress = flow_egress(settings)
    return [HttpCallRunner(egress=egress), WaitRunner(), TabularRunner(egress=egress), CodeRunner()]


def flow_egress(settings: Settings) -> Egress:
    """Where the HTTP steps may connect: the sandbox's egress policy with the flow lists."""
    return Egress(EgressPolicy.from_terms(settings.flow_egress_allow, settings.flow_egress_deny))


__all__ = [
    "CodeRunner",
    "Egress",
    "HttpCallRunner",
    "TabularRunner",
    "WaitRunner",
    "builtin_runners",
    "flow_egress",
]
