"""BSON field values: ObjectId references, millisecond UTC times, tolerant enums.

The old service stored references both as ObjectIds and as their hex strings
(its Go structs changed type between versions), so a reference is written as an
ObjectId and looked up in both forms.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from bson import ObjectId

from codeactions_core.model import utcnow

E = TypeVar("E", bound=enum.Enum)

HEX_ID = re.compile(r"[0-9a-fA-F]{24}")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def object_id(value: object) -> ObjectId | None:
    """The ObjectId that ``value`` spells as 24 hex digits, else None."""
    if isinstance(value, str) and HEX_ID.fullmatch(value):
        return ObjectId(value)
    return None


def reference(value: str) -> ObjectId | str:
    """How a reference to another document is written: an ObjectId when it is one."""
    return object_id(value) or value


def reference_query(value: str) -> dict[str, Any] | None:
    """A query value matching a reference stored as an ObjectId or as its hex string.

    None when ``value`` is not an ObjectId at all, so nothing can match.
    """
    oid = object_id(value)
    if oid is None:
        return None
    return {"$in": [oid, str(oid)]}


def id_query(value: str) -> dict[str, Any] | None:
    """A query for the document whose ``_id`` is ``value``, or None when it cannot exist."""
    match = reference_query(value)
    return None if match is None else {"_id": match}


def reference_text(value: object) -> str:
    """A stored reference (ObjectId, hex string or missing) as the id string the model uses."""
    return "" if value is None else str(value)


def bson_time(moment: datetime) -> datetime:
    """``moment`` as BSON keeps it: UTC, truncated to milliseconds (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def now() -> datetime:
    return bson_time(utcnow())


def read_time(document: Mapping[str, Any], *names: str) -> datetime:
    """The first of the fields ``names`` holding a datetime.

    Falls back to the creation time inside an ObjectId ``_id``, then to the epoch.
    """
    for name in names:
        value = document.get(name)
        if isinstance(value, datetime):
            return bson_time(value)
    oid = document.get("_id")
    if isinstance(oid, ObjectId):
        return bson_time(oid.generation_time)
    return EPOCH


def enum_value(
    kind: type[E], value: object, default: E, aliases: Mapping[object, E] | None = None
) -> E:
    """``value`` as a member of ``kind``; legacy ``aliases`` and then ``default`` otherwise."""
    if aliases and isinstance(value, (str, int)) and value in aliases:
        return aliases[value]
    try:
        return kind(value)
    except (ValueError, TypeError):
        return default


def text(value: object) -> str:
    """A stored string field; missing or null reads as empty."""
    return "" if value is None else str(value)


def mapping(value: object) -> dict[str, Any]:
    """A stored sub-document; missing or null (Go's nil map) reads as empty."""
    return dict(value) if isinstance(value, Mapping) else {}
