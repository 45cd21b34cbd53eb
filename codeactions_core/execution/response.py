"""The HTTP response a code shapes on ``/action/endpoint``: its headers and content type.

The harness reports what the code set (``headers``: name → list of values); the
server checks it here, never trusting the harness: hop-by-hop and framing headers
(the server's own business) and names or values that are not valid HTTP (CR/LF
injection, control characters) are refused, each with a message the run records.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REFUSED = frozenset(
    {
        "connection",
        "transfer-encoding",
        "content-length",
        "upgrade",
        "keep-alive",
        "te",
        "trailer",
        "host",
    }
)
"""Hop-by-hop and framing headers (RFC 9110 §7.6.1, RFC 9112): only the server sets them."""
REFUSED_PREFIX = "proxy-"
TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
TOKEN = re.compile(TCHARS)
"""A header name (RFC 9110 token)."""
FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")
"""A header value: visible ASCII, spaces and tabs (no CR, LF, NUL, controls, nor non-ASCII
text, which HTTP/1.1 servers cannot send as is)."""
QUOTED = r'"[\t\x20-\x21\x23-\x5b\x5d-\x7e]*"'
MEDIA_TYPE = re.compile(rf"{TCHARS}/{TCHARS}(\s*;\s*{TCHARS}=({QUOTED}|{TCHARS}))*")
MAX_HEADERS = 64
MAX_HEADER_BYTES = 16 * 1024
MAX_SHOWN = 100

SHORT_TYPES = {
    "json": "application/json; charset=UTF-8",
    "html": "text/html; charset=UTF-8",
}
PLAIN_TEXT = "text/plain; charset=UTF-8"


def shown(text: str) -> str:
    return repr(text[:MAX_SHOWN] + ("…" if len(text) > MAX_SHOWN else ""))


def header_problem(name: str, value: str) -> str | None:
    """Why the code may not set this header; None when it may."""
    if not TOKEN.fullmatch(name):
        return f"response header name {shown(name)} is not a valid HTTP header name"
    lower = name.lower()
    if lower in REFUSED or lower.startswith(REFUSED_PREFIX):
        return (
            f"response header {name!r} is refused: hop-by-hop and framing headers are set "
            "by the server only"
        )
    if not FIELD_VALUE.fullmatch(value):
        return (
            f"response header {name!r} is refused: its value contains CR, LF or another "
            "character not allowed in HTTP headers (visible ASCII, space and tab only)"
        )
    return None


def response_headers(raw: Any) -> tuple[dict[str, list[str]], list[str]]:
    """The headers the code set that may be sent, and a message for each one refused."""
    if raw is None or raw == {}:
        return {}, []
    if not isinstance(raw, Mapping):
        kind = type(raw).__name__
        return {}, [f"response headers must be an object of name to value(s), got {kind}"]
    accepted: dict[str, list[str]] = {}
    problems: list[str] = []
    size = 0
    for name, values in raw.items():
        name = str(name)
        for value in values if isinstance(values, list) else [values]:
            value = "" if value is None else str(value)
            problem = header_problem(name, value)
            if problem is None and sum(map(len, accepted.values())) >= MAX_HEADERS:
                problem = f"response header {name!r} is refused: at most {MAX_HEADERS} headers"
            size += len(name) + len(value)
            if problem is None and size > MAX_HEADER_BYTES:
                problem = (
                    f"response header {name!r} is refused: headers beyond {MAX_HEADER_BYTES} bytes"
                )
            if problem is None:
                accepted.setdefault(name, []).append(value)
            elif problem not in problems:
                problems.append(problem)
    return accepted, problems


def content_type_problem(value: str) -> str | None:
    """Why ``value`` cannot be a content type; None when it is ``json``, ``html``, ``text``
    (any short word: plain text, as the old service answered) or a full media type."""
    if "/" not in value:
        return None
    if not MEDIA_TYPE.fullmatch(value.strip()):
        return f"content type {shown(value)} is not a valid media type; plain text was answered"
    return None


def media_type(content_type: Any) -> str:
    """The Content-Type to answer for what the code set: ``json`` and ``html`` as the old
    service did, a full media type (``image/png``, ``text/csv; charset=utf-8``) as it is,
    anything else plain text."""
    value = str(content_type or "").strip()
    short = SHORT_TYPES.get(value.lower())
    if short is not None:
        return short
    if "/" in value and content_type_problem(value) is None:
        return value
    return PLAIN_TEXT
