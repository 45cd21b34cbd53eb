"""Placeholders in step configs: ``{{leadId}}``, ``{{variables.x}}``, ``{{steps.<id>.result...}}``.

The scope is a mapping, as the engine builds it::

    {"leadId": "42", "variables": {...}, "steps": {"<step id>": {"result": ...}}}

A placeholder is a dotted path into the scope; a segment walks into a dict by
key, or into a list by a non-negative index (``{{steps.fetch.result.items.0.id}}``).
Whitespace inside the braces is ignored (``{{ leadId }}``).

A string that is exactly one placeholder becomes the value itself (a number
stays a number, a dict a dict). Placeholders inside a longer string are
replaced by text: strings as they are, ``None`` as nothing, booleans as
``true``/``false``, numbers as written, dicts and lists as compact JSON.
A path that leads nowhere raises :class:`PlaceholderError` naming it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from codeactions_core.flows.steps import StepFailed

PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
ROOTS = ("leadId", "variables", "steps")

NUMBER_TEXT = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)\s*$"
"""A string holding a number, e.g. ``"30"`` (what a variable from a query string looks like)."""


class PlaceholderError(StepFailed):
    """A placeholder names nothing in the scope; ``message`` says which and why (fails the step)."""


def make_scope(
    lead_id: Any, variables: Mapping[str, Any], results: Mapping[str, Any]
) -> dict[str, Any]:
    """The scope of a step: the lead id, the variables and the results of earlier steps by id."""
    return {
        "leadId": lead_id,
        "variables": variables,
        "steps": {step_id: {"result": result} for step_id, result in results.items()},
    }


def resolve(value: Any, scope: Mapping[str, Any]) -> Any:
    """``value`` with every placeholder in its strings replaced, recursively (a copy)."""
    if isinstance(value, str):
        return _resolve_text(value, scope)
    if isinstance(value, Mapping):
        return {key: resolve(item, scope) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [resolve(item, scope) for item in value]
    return value


def _resolve_text(text: str, scope: Mapping[str, Any]) -> Any:
    whole = PLACEHOLDER.fullmatch(text)
    if whole:
        return lookup(whole[1], scope)
    if "{{" not in text:
        return text
    return PLACEHOLDER.sub(lambda match: to_text(lookup(match[1], scope)), text)


def lookup(expression: str, scope: Mapping[str, Any]) -> Any:
    """The value a placeholder expression (the text between the braces) names in ``scope``."""
    segments = _segments(expression)
    current: Any = scope
    for depth, segment in enumerate(segments):
        where = ".".join(segments[:depth]) or "the scope"
        if isinstance(current, Mapping):
            if segment not in current:
                raise PlaceholderError(
                    f"unknown placeholder {{{{{expression}}}}}: {_missing(where, segment, current)}"
                )
            current = current[segment]
        elif isinstance(current, list | tuple):
            if not segment.isdigit() or int(segment) >= len(current):
                raise PlaceholderError(
                    f"unknown placeholder {{{{{expression}}}}}: {where} is a list of "
                    f"{len(current)} item(s), it has no item {segment!r}"
                )
            current = current[int(segment)]
        else:
            raise PlaceholderError(
                f"unknown placeholder {{{{{expression}}}}}: {where} is {_kind(current)}, "
                f"it has no {segment!r}"
            )
    return current


def _missing(where: str, segment: str, mapping: Mapping[str, Any]) -> str:
    if where == "the scope":
        return f"it must start with one of {', '.join(ROOTS)}"
    if where == "steps":
        return f"no earlier step {segment!r} has a result"
    return f"{where} has no {segment!r}"


def _kind(value: Any) -> str:
    return "null" if value is None else f"a {type(value).__name__}"


def _segments(expression: str) -> list[str]:
    segments = expression.split(".")
    if not expression or any(not segment for segment in segments):
        raise PlaceholderError(
            f"invalid placeholder {{{{{expression}}}}}: expected a dotted path such as leadId"
        )
    return segments


def to_text(value: Any) -> str:
    """How a value reads inside a longer string (and as a code parameter)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def expressions(value: Any) -> list[str]:
    """Every placeholder expression in ``value``'s strings, recursively, in order."""
    if isinstance(value, str):
        return [match[1] for match in PLACEHOLDER.finditer(value)]
    if isinstance(value, Mapping):
        return [found for item in value.values() for found in expressions(item)]
    if isinstance(value, list | tuple):
        return [found for item in value for found in expressions(item)]
    return []


def problems(value: Any) -> list[str]:
    """Placeholders in ``value`` that no execution can resolve (checked on save)."""
    found = []
    for expression in expressions(value):
        segments = expression.split(".")
        if not expression or any(not segment for segment in segments):
            found.append(
                f"invalid placeholder {{{{{expression}}}}}: expected a dotted path such as leadId"
            )
        elif segments[0] not in ROOTS:
            found.append(
                f"unknown placeholder {{{{{expression}}}}}: "
                f"it must start with one of {', '.join(ROOTS)}"
            )
        elif segments[0] == "leadId" and len(segments) > 1:
            found.append(f"invalid placeholder {{{{{expression}}}}}: leadId has no fields")
        elif segments[0] == "steps" and (len(segments) < 3 or segments[2] != "result"):
            found.append(
                f"invalid placeholder {{{{{expression}}}}}: expected steps.<step id>.result..."
            )
    return found


def references(value: Any) -> set[str]:
    """Ids of the steps whose results ``value``'s placeholders read (``{{steps.<id>...}}``)."""
    found = set()
    for expression in expressions(value):
        segments = expression.split(".")
        if len(segments) >= 2 and segments[0] == "steps" and segments[1]:
            found.add(segments[1])
    return found


def or_placeholder(schema: dict[str, Any], expected: str) -> dict[str, Any]:
    """``schema``, or a string holding a placeholder or a number (for numeric config fields).

    ``expected`` describes the field for error messages, e.g. ``"a number of seconds"``.
    """
    text = {"type": "string", "pattern": rf"\{{\{{|{NUMBER_TEXT}"}
    return {
        "anyOf": [schema, text],
        "description": f"{expected}, or a string with a {{{{placeholder}}}}",
    }


def has_placeholder(value: Any) -> bool:
    """Whether ``value`` is a string with a placeholder in it."""
    return isinstance(value, str) and PLACEHOLDER.search(value) is not None
