"""Reading what a client sent: query parameters, headers and bounded bodies."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import falcon

from codeactions_core.errors import InvalidInput, LengthRequired

JSON_BODY_LIMIT = 8 * 1024 * 1024
DRAIN_LIMIT = 64 * 1024 * 1024
"""A refused body up to this size is read and discarded, so that the connection stays usable."""
CHUNK = 64 * 1024
MAX_JSON_DEPTH = 200


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
    """The raw body, with a Content-Length or chunked; a body of ``limit`` bytes or more is
    refused before it is stored (and read to its end, so that the connection stays usable)."""
    length = req.content_length
    stream = body_stream(req)
    if length is not None and length >= limit:
        drain(stream)
        raise InvalidInput(f"{what} is {length} bytes; it must be smaller than {limit} bytes")
    data = read_up_to(stream, limit)
    if len(data) >= limit:
        drain(stream)
        raise InvalidInput(f"{what} must be smaller than {limit} bytes")
    return data


def body_stream(req: falcon.Request) -> Any:
    """Where the body is read from: bounded by Content-Length, or a chunked body the server
    decodes and ends (``wsgi.input_terminated``); 411 for a chunked body it cannot end."""
    if req.content_length is not None:
        return req.bounded_stream
    chunked = "chunked" in (req.get_header("Transfer-Encoding") or "").lower()
    if not chunked:
        return req.bounded_stream  # no body
    if not req.env.get("wsgi.input_terminated"):
        raise LengthRequired(
            "this server cannot read chunked request bodies; send a Content-Length"
        )
    return req.stream


def read_up_to(stream: Any, limit: int) -> bytes:
    """At most ``limit`` bytes of ``stream`` (reads may return less than asked)."""
    chunks, size = [], 0
    while size < limit:
        chunk = stream.read(min(CHUNK, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def drain(stream: Any) -> None:
    """Read and discard what is left of a refused body (up to DRAIN_LIMIT)."""
    drained = 0
    while drained < DRAIN_LIMIT:
        chunk = stream.read(CHUNK)
        if not chunk:
            return
        drained += len(chunk)


def decode_text(data: bytes, what: str = "body") -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{what} is not valid UTF-8 text (byte {exc.start})") from None


def is_json(req: falcon.Request) -> bool:
    content_type = (req.content_type or "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


class MalformedJson(InvalidInput):
    """The text is not JSON at all (as opposed to JSON too hostile to accept)."""


def parse_json(text: str) -> Any:
    """Parse JSON text; InvalidInput naming the problem for malformed or hostile documents
    (nesting deeper than MAX_JSON_DEPTH, numbers too long to convert, lone surrogates)."""
    depth = json_depth(text) if text.count("[") + text.count("{") > MAX_JSON_DEPTH else 0
    if depth > MAX_JSON_DEPTH:
        raise InvalidInput(
            f"JSON body is nested {depth} levels deep; at most {MAX_JSON_DEPTH} are allowed"
        )
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedJson(f"malformed JSON body: {exc}") from None
    except RecursionError:
        raise InvalidInput(
            f"JSON body is nested too deeply; at most {MAX_JSON_DEPTH} levels are allowed"
        ) from None
    except ValueError:  # an integer of more digits than Python converts
        raise InvalidInput(
            f"JSON body holds a number of more than {sys.get_int_max_str_digits()} digits"
        ) from None
    surrogate = lone_surrogate(value)
    if surrogate is not None:
        raise InvalidInput(
            f"JSON body holds a lone surrogate \\u{ord(surrogate):04x}, "
            "which is not valid Unicode text"
        )
    return value


def json_depth(text: str) -> int:
    """How deeply brackets nest in ``text``, outside strings (linear, no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def lone_surrogate(value: Any) -> str | None:
    """The first lone UTF-16 surrogate in a parsed JSON value's strings (keys too), if any."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                return item[exc.start]
    return None


def json_object(req: falcon.Request, data: bytes) -> dict[str, Any]:
    """Parse a JSON object body with a clear 400 when it is not one."""
    value = parse_json(decode_text(data))
    if not isinstance(value, dict):
        raise InvalidInput(f"JSON body must be an object, got {type(value).__name__}")
    return value


def without_headers(headers: Mapping[str, list[str]], names: Iterable[str]) -> dict[str, list[str]]:
    """``headers`` without ``names`` (any case): credentials the server consumed itself."""
    dropped = {name.lower() for name in names}
    return {name: list(values) for name, values in headers.items() if name.lower() not in dropped}


def canonical_header(name: str) -> str:
    """Go's canonical MIME header form, as the old service passed headers: ``X-Api-Key``."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def headers_from_environ(environ: Mapping[str, str]) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for key, value in environ.items():
        if key == "HTTP_HOST":
            continue  # Go's request headers never listed Host, so code never saw it
        if key.startswith("HTTP_"):
            name = key[5:]
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            name = key
        else:
            continue
        headers.setdefault(canonical_header(name.replace("_", "-")), []).append(value)
    return headers
