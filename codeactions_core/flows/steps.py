"""The contract of a flow step runner (plugins return them from ``codeactions_step_runners``).

A runner executes the steps of one ``type``. The engine resolves placeholders
(``{{leadId}}``, ``{{variables.x}}``, ``{{steps.<id>.result...}}``) in a step's
config, checks the resolved config against the runner's JSON Schema and its
``validate_config``, then calls ``execute``. Raising :class:`StepFailed` (or
anything else) fails the step with that message; ``continue_on_error`` on the
step decides whether the execution goes on.

A runner never sleeps to wait: it returns ``StepResult(resume_after=seconds)``
and the engine resumes the execution later without holding a thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

LogFunction = Callable[..., None]
"""``on_log(message, level="info")``: a line in the step's record (levels debug, info, error)."""


class StepFailed(Exception):
    """The step failed; ``message`` is shown in the execution as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class StepResult:
    result: Any = None
    """JSON-compatible; later steps read it as ``{{steps.<id>.result...}}``."""
    resume_after: float = 0.0
    """Seconds to wait before the execution goes on (the step then counts as completed)."""


@dataclass
class StepContext:
    """What a step knows about the execution it belongs to."""

    execution_id: str
    flow_id: str
    project_uuid: str
    step_id: str
    lead_id: str | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    steps: Mapping[str, Any] = field(default_factory=dict)
    """Results of the steps completed so far, by step id."""
    attempt: int = 1
    """1, or more when the step is run again because its worker died while running it."""
    run_code: Callable[..., Any] | None = None
    """``run_code(code_id, params)``: run a code action of the flow's project and return its
    result (parsed when it answered JSON); raises StepFailed when it fails."""


@runtime_checkable
class StepRunner(Protocol):
    """Executes one type of flow step."""

    step_type: str
    """The ``type`` of the steps this runner executes, e.g. ``http_call``."""

    config_schema: dict[str, Any]
    """JSON Schema of a step's ``config``; checked on save (with placeholders still in it)
    and before running (resolved). Allow strings where a placeholder may stand."""

    def validate_config(self, config: dict[str, Any]) -> list[str]:
        """Problems the schema cannot express, as messages; empty when the config is valid."""

    def execute(
        self, config: dict[str, Any], context: StepContext, on_log: LogFunction
    ) -> StepResult:
        """Run the step with its resolved ``config``; raise StepFailed to fail it."""


def cleanup_of(runner: StepRunner) -> Callable[[StepContext], None] | None:
    """The runner's optional ``cleanup(context)``, called once after each of its steps ran."""
    cleanup = getattr(runner, "cleanup", None)
    return cleanup if callable(cleanup) else None
