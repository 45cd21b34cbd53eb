"""The contract of a flow step runner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass
class StepResult:
    success: bool
    result: Any = None
    error: str = ""
    logs: list[str] = field(default_factory=list)


@runtime_checkable
class StepRunner(Protocol):
    """Executes one type of flow step."""

    step_type: str
    """The ``type`` of the steps this runner executes, e.g. ``http_call``."""

    config_schema: dict[str, Any]
    """JSON Schema of a step's ``config``; checked on save and before running."""

    def validate_config(self, config: dict[str, Any]) -> list[str]:
        """Problems beyond the schema, as messages; empty when the config is valid."""

    def execute(
        self, config: dict[str, Any], context: dict[str, Any], on_log: Callable[[str], None]
    ) -> StepResult:
        """Run the step with placeholders already resolved in ``config``."""
