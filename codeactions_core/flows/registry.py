"""The step runners in use, by type, and the validation of a flow version's steps.

A step is ``{"id", "type", "name", "config", "continue_on_error"}``:

- ``id``: a non-empty string, unique in the flow, without dots, whitespace or
  braces (it is a segment of ``{{steps.<id>.result}}``);
- ``type``: a type some installed runner executes;
- ``name``: optional text; the Portuguese ``nome`` of the old flows is accepted
  as an alias and stored as ``name`` (both at once must agree);
- ``config``: an object (default ``{}``) valid for the runner's JSON Schema
  (Draft 2020-12) and its ``validate_config``; its placeholders may read only
  the results of steps before it;
- ``continue_on_error``: a boolean (default ``false``).

No other keys are accepted, so a misspelt one is reported instead of ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from codeactions_core.errors import ConfigurationError, InvalidInput
from codeactions_core.flows import placeholders
from codeactions_core.flows.steps import StepFailed, StepRunner

STEP_KEYS = ("id", "type", "name", "nome", "config", "continue_on_error")
STEP_ID = re.compile(r"[^\s.{}]+")


class InvalidSteps(InvalidInput):
    """Steps that cannot be saved; ``problems`` lists every one (``message`` joins them)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"invalid steps: {'; '.join(problems)}")
        self.problems = problems


class StepRunners:
    """The runners by step type; the first runner of a type wins (third-party before built-in)."""

    def __init__(self, runners: Iterable[StepRunner]) -> None:
        self._runners: dict[str, StepRunner] = {}
        for runner in runners:
            step_type = getattr(runner, "step_type", None)
            if (
                not isinstance(runner, StepRunner)
                or not isinstance(step_type, str)
                or not step_type
            ):
                raise ConfigurationError(
                    f"{runner!r} is not a step runner (see codeactions_core.flows.steps)"
                )
            if step_type in self._runners:
                continue
            try:
                Draft202012Validator.check_schema(runner.config_schema)
            except SchemaError as error:
                raise ConfigurationError(
                    f"the config_schema of step runner {step_type!r} ({type(runner).__module__}) "
                    f"is not a valid JSON Schema: {error.message}"
                ) from None
            self._runners[step_type] = runner

    def types(self) -> list[str]:
        """The known step types, sorted."""
        return sorted(self._runners)

    def get(self, step_type: str) -> StepRunner | None:
        """The runner of ``step_type``, if any."""
        return self._runners.get(step_type)

    def __contains__(self, step_type: object) -> bool:
        return step_type in self._runners

    def schemas(self) -> dict[str, dict[str, Any]]:
        """Each type's config JSON Schema (e.g. for an editor)."""
        return {step_type: self._runners[step_type].config_schema for step_type in self.types()}

    def validate_steps(self, steps: Any) -> list[dict[str, Any]]:
        """The steps with ``name``, ``config``, ``continue_on_error`` filled in, or InvalidSteps."""
        if not isinstance(steps, list):
            raise InvalidSteps([f"steps must be a list of step objects, got {kind(steps)}"])
        problems: list[str] = []
        all_ids = {
            step.get("id")
            for step in steps
            if isinstance(step, dict) and isinstance(step.get("id"), str)
        }
        earlier: dict[str, int] = {}
        normalised = []
        for position, step in enumerate(steps, start=1):
            label = f"step {position}"
            if not isinstance(step, dict):
                problems.append(f"{label}: must be an object, got {kind(step)}")
                continue
            if isinstance(step.get("id"), str) and step["id"]:
                label = f"step {position} ({step['id']!r})"
            found = self._step_problems(step, earlier, all_ids)
            problems += [f"{label}: {problem}" for problem in found]
            if isinstance(step.get("id"), str) and step["id"] not in earlier:
                earlier[step["id"]] = position
            normalised.append(normalise(step))
        if problems:
            raise InvalidSteps(problems)
        return normalised

    def _step_problems(
        self, step: dict[str, Any], earlier: Mapping[str, int], all_ids: set[str]
    ) -> list[str]:
        found = []
        unknown = sorted(str(key) for key in step if key not in STEP_KEYS)
        if unknown:
            found.append(
                f"unknown field(s) {', '.join(map(repr, unknown))} "
                f"(allowed: {', '.join(STEP_KEYS)})"
            )
        found += id_problems(step.get("id"), earlier)
        found += name_problems(step)
        if "continue_on_error" in step and not isinstance(step["continue_on_error"], bool):
            found.append(
                f"continue_on_error must be true or false, got {kind(step['continue_on_error'])}"
            )
        step_type, config = step.get("type"), step.get("config", {})
        runner = None
        if not isinstance(step_type, str) or not step_type:
            found.append(f"type must be one of: {', '.join(self.types())}")
        elif (runner := self.get(step_type)) is None:
            found.append(f"unknown type {step_type!r} (known types: {', '.join(self.types())})")
        if not isinstance(config, dict):
            found.append(f"config must be an object, got {kind(config)}")
            return found
        if runner is not None:
            found += config_problems(runner, config)
        found += placeholders.problems(config)
        found += reference_problems(config, step.get("id"), earlier, all_ids)
        return found


def normalise(step: dict[str, Any]) -> dict[str, Any]:
    """A valid step in its stored shape: ``nome`` becomes ``name``, defaults filled in."""
    return {
        "id": step.get("id"),
        "type": step.get("type"),
        "name": step.get("name", step.get("nome", "")),
        "config": step.get("config", {}),
        "continue_on_error": step.get("continue_on_error", False),
    }


def id_problems(step_id: Any, earlier: Mapping[str, int]) -> list[str]:
    if not isinstance(step_id, str) or not step_id:
        return [f"id must be a non-empty string, got {kind(step_id)}"]
    if not STEP_ID.fullmatch(step_id):
        return [f"id {step_id!r} must not contain dots, whitespace or braces"]
    if step_id in earlier:
        return [f"duplicate id {step_id!r}: step {earlier[step_id]} has it already"]
    return []


def name_problems(step: dict[str, Any]) -> list[str]:
    found = [
        f"{key} must be a string, got {kind(step[key])}"
        for key in ("name", "nome")
        if key in step and not isinstance(step[key], str)
    ]
    if not found and "name" in step and "nome" in step and step["name"] != step["nome"]:
        found.append("name and nome (its alias) differ: give one of them")
    return found


def reference_problems(
    config: Any, step_id: Any, earlier: Mapping[str, int], all_ids: set[str]
) -> list[str]:
    """Placeholders reading a step that does not run before this one."""
    found = []
    for ref in sorted(placeholders.references(config)):
        if ref in earlier and ref != step_id:
            continue
        if ref == step_id:
            found.append(f"config refers to the result of this same step ({{{{steps.{ref}...}}}})")
        elif ref in all_ids:
            found.append(f"config refers to step {ref!r}, which runs later")
        else:
            found.append(f"config refers to an unknown step {ref!r}")
    return found


def config_problems(runner: StepRunner, config: dict[str, Any]) -> list[str]:
    """What is wrong with ``config`` for ``runner``: its JSON Schema, then ``validate_config``."""
    validator = Draft202012Validator(runner.config_schema)
    errors = sorted(
        validator.iter_errors(config), key=lambda error: [str(part) for part in error.absolute_path]
    )
    if errors:
        return [f"{json_path(error.absolute_path)}: {describe_error(error)}" for error in errors]
    try:
        return [str(problem) for problem in runner.validate_config(config) or []]
    except Exception as error:  # noqa: BLE001  (a runner's bug must not hide behind a 500)
        return [
            (
                f"config could not be checked by the {runner.step_type!r} runner: "
                f"{type(error).__name__}: {error}"
            )
        ]


def check_resolved(runner: StepRunner, config: dict[str, Any]) -> None:
    """Raise StepFailed when the config, its placeholders resolved, is not valid for ``runner``."""
    problems = config_problems(runner, config)
    if problems:
        raise StepFailed(f"invalid config once placeholders were resolved: {'; '.join(problems)}")


def describe_error(error: ValidationError) -> str:
    """A schema error in words; for ``anyOf`` the branch that matched the value's type speaks."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        specific = [child for child in error.context if child.validator not in ("type", "pattern")]
        if specific:
            return "; ".join(dict.fromkeys(describe_error(child) for child in specific))
        expected = error.schema.get("description") if isinstance(error.schema, dict) else None
        if expected:
            return f"{error.instance!r} is not {expected}"
    return error.message


def json_path(path: Iterable[Any]) -> str:
    """``config.retry.max_attempts``, ``config.additional_fields[0].field``."""
    text = "config"
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(part)):
            text += f".{part}"
        else:
            text += f"[{str(part)!r}]"
    return text


def kind(value: Any) -> str:
    """The JSON kind of a value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
