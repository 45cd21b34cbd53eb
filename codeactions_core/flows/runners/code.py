"""``code``: run a code action of the flow's project; its result is the step's result.

Config: ``{"code_id": "...", "params": {"name": value}, "version": n}`` (``version``
optional: pins a code version; without it the code's current version runs). Parameters reach the
code as strings: a value that is not a string (e.g. a number from
``{{steps.x.result.count}}``) is turned into text the way placeholders are
interpolated (``None`` → empty, booleans → ``true``/``false``, dicts and lists →
compact JSON).
"""

from __future__ import annotations

from typing import Any

from codeactions_core.flows.placeholders import to_text
from codeactions_core.flows.steps import LogFunction, StepContext, StepFailed, StepResult

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code_id": {"type": "string", "minLength": 1},
        "params": {"type": "object"},
        "version": {"type": ["integer", "string"]},
    },
    "required": ["code_id"],
    "additionalProperties": False,
}


class CodeRunner:
    """Runs ``code`` steps through the engine's ``run_code``."""

    step_type = "code"
    config_schema = SCHEMA

    def validate_config(self, config: dict[str, Any]) -> list[str]:
        """Nothing beyond the schema."""
        return []

    def execute(
        self, config: dict[str, Any], context: StepContext, on_log: LogFunction
    ) -> StepResult:
        """Run the code with the params as strings; its result is the step's."""
        if context.run_code is None:
            raise StepFailed("code steps cannot run here: no code runner is configured")
        code_id = config["code_id"]
        params = {str(name): to_text(value) for name, value in (config.get("params") or {}).items()}
        version = config.get("version")
        if version in (None, ""):
            on_log(f"running code {code_id}")
            return StepResult(result=context.run_code(code_id, params))
        on_log(f"running code {code_id} at version {version}")
        return StepResult(result=context.run_code(code_id, params, version=version))
