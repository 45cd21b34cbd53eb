"""Parsers of setting values: each turns a variable's text into a typed value or raises
ValueError saying what was expected."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

from codeactions_core.egress import PolicyError, parse_rule

TRUE_WORDS = {"1", "t", "true", "yes", "y", "on"}
FALSE_WORDS = {"0", "f", "false", "no", "n", "off"}
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def parse_bool(raw: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def parse_int(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError(f"expected an integer, got {raw!r}") from None


def parse_float(raw: str) -> float:
    try:
        return float(raw.strip())
    except ValueError:
        raise ValueError(f"expected a number, got {raw!r}") from None


def parse_terms(raw: str) -> tuple[str, ...]:
    """Comma-separated terms, trimmed, empties dropped."""
    return tuple(term.strip() for term in raw.split(",") if term.strip())


def parse_fernet_keys(raw: str) -> tuple[str, ...]:
    """Comma-separated Fernet keys (urlsafe base64 of 32 bytes), newest first."""
    keys = parse_terms(raw)
    for position, key in enumerate(keys, start=1):
        try:
            decoded = base64.urlsafe_b64decode(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            decoded = b""
        if len(decoded) != 32:
            raise ValueError(
                f"key {position} is not a Fernet key (urlsafe base64 of 32 bytes); "
                "make one with `codeactions secrets new-key`"
            )
    return keys


def parse_clock(raw: str) -> str:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", raw.strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"expected a time of day as HH:MM, got {raw!r}")
    return f"{int(match[1]):02d}:{match[2]}"


def parse_auto_bool(raw: str) -> bool | None:
    """``auto`` (None: decided from other settings), or true/false."""
    return None if raw.strip().lower() == "auto" else parse_bool(raw)


def parse_db_type(raw: str) -> str:
    """A store name; which ones exist (and their other spellings) is up to the installed
    store plugins (``StoreType``), checked at start."""
    value = raw.strip().lower()
    if not re.fullmatch(r"[a-z][a-z0-9_+.-]*", value):
        raise ValueError(f"expected a store name such as sqlite or postgres, got {raw!r}")
    return value


NETWORK_MODES = ("egress", "none", "host")


def parse_network_mode(raw: str) -> str:
    """A sandbox network mode; the booleans of earlier versions mean egress (true) or none."""
    value = raw.strip().lower()
    if value in TRUE_WORDS:
        return "egress"
    if value in FALSE_WORDS:
        return "none"
    if value not in NETWORK_MODES:
        raise ValueError(f"expected one of {', '.join(NETWORK_MODES)}, got {raw!r}")
    return value


SANDBOX_PROTECTIONS = (
    "namespaces",
    "filesystem",
    "network",
    "egress",
    "seccomp",
    "uid",
    "cgroups",
    "cpu",
)


def parse_protections(raw: str) -> tuple[str, ...]:
    """Names of sandbox protections; ``all`` is every one."""
    names: list[str] = []
    for term in parse_terms(raw.lower()):
        if term == "all":
            names.extend(SANDBOX_PROTECTIONS)
        elif term in SANDBOX_PROTECTIONS:
            names.append(term)
        else:
            raise ValueError(
                f"unknown protection {term!r} (known: {', '.join(SANDBOX_PROTECTIONS)}, all)"
            )
    return tuple(dict.fromkeys(names))


def parse_egress_terms(raw: str) -> tuple[str, ...]:
    """CIDRs or ``host:port`` entries of an egress list, each checked."""
    terms = parse_terms(raw)
    for term in terms:
        try:
            parse_rule(term)
        except PolicyError as exc:
            raise ValueError(str(exc)) from None
    return terms


CODE_TYPES = ("endpoint", "flow")


def parse_code_types(raw: str) -> tuple[str, ...]:
    """Comma-separated code types (`endpoint`, `flow`)."""
    types = tuple(dict.fromkeys(term.lower() for term in parse_terms(raw)))
    unknown = [term for term in types if term not in CODE_TYPES]
    if unknown or not types:
        raise ValueError(f"expected code types among {', '.join(CODE_TYPES)}, got {raw!r}")
    return types


def parse_log_level(raw: str) -> str:
    value = raw.strip().lower()
    value = {"warn": "warning", "fatal": "critical", "panic": "critical", "trace": "debug"}.get(
        value, value
    )
    if value not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}, got {raw!r}")
    return value


def at_least(minimum: float, parse: Callable[[str], Any] = parse_int) -> Callable[[str], Any]:
    def parse_bounded(raw: str) -> Any:
        value = parse(raw)
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {raw!r}")
        return value

    return parse_bounded


def port(raw: str) -> int:
    value = parse_int(raw)
    if not 0 < value < 65536:
        raise ValueError(f"expected a TCP port between 1 and 65535, got {raw!r}")
    return value


def port_or_off(raw: str) -> int:
    """A TCP port, or 0 for none."""
    return 0 if parse_int(raw) == 0 else port(raw)
