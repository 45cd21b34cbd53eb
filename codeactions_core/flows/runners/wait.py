"""``wait``: pause the execution for up to an hour without holding a thread.

Config: ``{"seconds": 0 < s <= 3600 (a number, or text such as "{{variables.delay}}"),
"reason": "why"}``. The step never sleeps: it returns ``resume_after=seconds``
and the engine resumes the execution when that time has passed. Result:
``{"waited_seconds": s, "reason": reason}``.
"""

from __future__ import annotations

from typing import Any

from codeactions_core.flows.placeholders import or_placeholder
from codeactions_core.flows.runners.common import as_number, number_problems
from codeactions_core.flows.steps import LogFunction, StepContext, StepFailed, StepResult

MAX_SECONDS = 3600

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "seconds": or_placeholder(
            {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_SECONDS}, "a number of seconds"
        ),
        "reason": {"type": "string"},
    },
    "required": ["seconds"],
    "additionalProperties": False,
}


class WaitRunner:
    """Runs ``wait`` steps by asking the engine to resume later."""

    step_type = "wait"
    config_schema = SCHEMA

    def validate_config(self, config: dict[str, Any]) -> list[str]:
        """Seconds given as text are in range too."""
        return number_problems(
            config, "seconds", minimum=0, maximum=MAX_SECONDS, exclusive_minimum=True
        )

    def execute(
        self, config: dict[str, Any], context: StepContext, on_log: LogFunction
    ) -> StepResult:
        """Return at once, asking to be resumed after ``seconds``."""
        seconds = as_number(config["seconds"], "seconds")
        if not 0 < seconds <= MAX_SECONDS:
            raise StepFailed(
                f"config.seconds: {seconds!r} must be greater than 0 and at most {MAX_SECONDS}"
            )
        reason = config.get("reason", "")
        on_log(f"waiting {seconds:g} s" + (f": {reason}" if reason else ""))
        return StepResult(
            result={"waited_seconds": seconds, "reason": reason}, resume_after=float(seconds)
        )
