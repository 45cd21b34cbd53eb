"""Running code in the sandbox: the public API for runtime plugins.

A language plugin imports from here only (a test keeps the list): the run
contract (:class:`Job` — a :class:`RunRequest` for one run of one code —,
:class:`Outcome`, :class:`Runtime`), the sandbox
(:class:`SandboxSpec`, :class:`SandboxLimits`, :class:`ZygoteConfig`,
:class:`Zygote`, :class:`Report`) and :class:`SandboxedRuntime`, the base class
that does job → warm or fresh sandbox → outcome for every language. A runtime
declares what its sandboxes need in their empty root by overriding
``SandboxedRuntime.binds()`` (read-only) and ``writable_binds()``.
"""

from codeactions_core.execution.outcome import describe_death, outcome_from_report
from codeactions_core.execution.runtime import (
    Job,
    LogLine,
    Outcome,
    RunRequest,
    Runtime,
    RuntimeHealth,
)
from codeactions_core.execution.sandbox import (
    MIB,
    Report,
    SandboxLimits,
    SandboxSpec,
    Zygote,
)
from codeactions_core.execution.sandboxed import MAX_TIMEOUT, SandboxedRuntime
from codeactions_core.execution.warm import WarmPool
from codeactions_core.execution.zygote_config import ZygoteConfig

__all__ = [
    "MAX_TIMEOUT",
    "MIB",
    "Job",
    "LogLine",
    "Outcome",
    "Report",
    "RunRequest",
    "Runtime",
    "RuntimeHealth",
    "SandboxLimits",
    "SandboxSpec",
    "SandboxedRuntime",
    "WarmPool",
    "Zygote",
    "ZygoteConfig",
    "describe_death",
    "outcome_from_report",
]
