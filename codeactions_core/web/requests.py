"""Reading what a client sent: query parameters and bounded bodies."""

from __future__ import annotations

import json
from typing import Any

import falcon

from codeactions_core.errors import InvalidInput

JSON_BODY_LIMIT = 8 * 1024 * 1024


def first_param(req: falcon.Request, name: str) -> str | None:
    """The first value of a query parameter (repeated parameters keep their first)."""
    value = req.params.get(name)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def first_params(req: falcon.Request) -> dict[str, str]:
    """Every query parameter with its first value."""
    return {name: first_param(req, name) or "" for name in req.params}


def read_body(req: falcon.Request, limit: int, what: str = "body") -> bytes:
    """The raw body; a body of ``limit`` bytes or more is refused before it is stored."""
    length = req.content_length
    if length is not None and length >= limit:
        raise InvalidInput(f"{what} is {length} bytes; it must be smaller than {limit} bytes")
    data = req.bounded_stream.read(limit)
    if len(data) >= limit:
        raise InvalidInput(f"{what} must be smaller than {limit} bytes")
    return data


def decode_text(data: bytes, what: str = "body") -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{what} is not valid UTF-8 text (byte {exc.start})") from None


def is_json(req: falcon.Request) -> bool:
    content_type = (req.content_type or "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


def json_object(req: falcon.Request, data: bytes) -> dict[str, Any]:
    """Parse a JSON object body with a clear 400 when it is not one."""
    try:
        value = json.loads(decode_text(data))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"malformed JSON body: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"JSON body must be an object, got {type(value).__name__}")
    return value
