"""Reading the client's own arguments: NAME=VALUE pairs and a request body (text or @file)."""

from __future__ import annotations

from pathlib import Path

from codeactions_core.client.api import EXIT_USAGE, ClientError


def pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ClientError(f"{what} {item!r} must look like NAME=VALUE", EXIT_USAGE)
        out[name] = value
    return out


def read_body_argument(value: str | None) -> bytes | None:
    if value is None:
        return None
    if value.startswith("@"):
        try:
            return Path(value[1:]).read_bytes()
        except OSError as exc:
            raise ClientError(f"--body {value}: {exc.strerror}", EXIT_USAGE) from None
    return value.encode()
