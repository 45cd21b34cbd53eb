"""Recognising faults of the machine (not of the request) in an exception, to answer them right."""

from __future__ import annotations

import errno

STORAGE_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
STORAGE_FULL_TEXTS = (
    "database or disk is full",  # SQLite (SQLITE_FULL)
    "no space left on device",  # PostgreSQL "could not extend file ...", MongoDB, the OS
    "could not extend file",
    "disk quota exceeded",
)
POSTGRES_DISK_FULL = "53100"  # SQLSTATE disk_full


def storage_full(exc: BaseException) -> str | None:
    """Why the storage is full, when ``exc`` (or what caused it) says so; None otherwise."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in STORAGE_FULL_ERRNOS:
            return f"{current.strerror or 'no space left on device'}"
        if getattr(current, "pgcode", None) == POSTGRES_DISK_FULL:
            return "the database's disk is full"
        text = str(current).lower()
        for phrase in STORAGE_FULL_TEXTS:
            if phrase in text:
                return phrase
        current = current.__cause__ or current.__context__
    return None


def storage_full_message(reason: str) -> str:
    return f"storage full: {reason}; the server cannot store anything until space is freed"
