"""The domain entities and their JSON shapes (COMPAT.md)."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MAX_LOG_CONTENT = 8000
DEFAULT_TIMEOUT = 60
"""A code's run timeout in seconds when none (or 0) is given."""
MIN_TIMEOUT, MAX_TIMEOUT = 5, 300
"""The bounds a code's timeout is clamped into; no run lasts longer than MAX_TIMEOUT."""
LEGACY_LANGUAGES = frozenset({"python", "javascript", "go"})
"""The languages the old interface accepts whether or not a runtime for them is installed
(COMPAT.md, the ``codes.language`` CHECK); a runtime plugin adds its own to these."""


class CodeType(enum.StrEnum):
    FLOW = "flow"
    ENDPOINT = "endpoint"


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (RunStatus.COMPLETED, RunStatus.FAILED)


class LogType(enum.StrEnum):
    DEBUG = "debug"
    INFO = "info"
    ERROR = "error"


class Role(enum.IntEnum):
    VIEWER = 1
    CONTRIBUTOR = 2
    MODERATOR = 3


OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")


def canonical_id(raw: str) -> str:
    """The one spelling of an id: a UUID in lower-case hyphenated form whatever its spelling
    (upper case, ``{…}``, ``urn:uuid:``, no hyphens), a MongoDB ObjectId in lower case, else
    as is."""
    text = raw.strip()
    if OBJECT_ID.fullmatch(text):
        return text.lower()
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return raw


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """Format a datetime as RFC 3339 in UTC, with a ``Z`` suffix like Go's encoder."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


@dataclass
class Code:
    id: str
    name: str
    type: CodeType
    source: str
    language: str
    project_uuid: str
    timeout: int
    url: str = ""
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    version: int | None = None
    """The number of the code's current version (None: a code stored before versions)."""

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "type": str(self.type),
            "source": self.source,
            "language": self.language,
            "url": self.url,
            "project_uuid": self.project_uuid,
            "timeout": self.timeout,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }
        if self.version is not None:
            document["version"] = self.version
        return document


@dataclass
class CodeVersion:
    """One immutable state of a code's program: what ran when this version was current."""

    code_id: str
    number: int
    source: str
    language: str
    timeout: int
    sha256: str
    author: str = ""
    note: str = ""
    created_at: datetime = field(default_factory=utcnow)

    def to_json(self, *, with_source: bool = True) -> dict[str, Any]:
        document: dict[str, Any] = {
            "code_id": self.code_id,
            "number": self.number,
            "language": self.language,
            "timeout": self.timeout,
            "sha256": self.sha256,
            "author": self.author,
            "note": self.note,
            "created_at": rfc3339(self.created_at),
        }
        if with_source:
            document["source"] = self.source
        return document


@dataclass
class NewCodeVersion:
    """A code's program as the next version records it; the store assigns its number."""

    source: str
    language: str
    timeout: int
    author: str = ""
    note: str = ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()

    def numbered(self, code_id: str, number: int, created_at: datetime) -> CodeVersion:
        """The version this becomes once a store gave it its number."""
        return CodeVersion(
            code_id=code_id,
            number=number,
            source=self.source,
            language=self.language,
            timeout=self.timeout,
            sha256=self.sha256,
            author=self.author,
            note=self.note,
            created_at=created_at,
        )


@dataclass
class NewCode:
    """A validated code about to be stored; the store assigns id and timestamps."""

    name: str
    type: CodeType
    source: str
    language: str
    project_uuid: str
    timeout: int
    url: str = ""


@dataclass
class CodeChanges:
    """A partial update of a code: ``None`` keeps the stored value."""

    name: str | None = None
    type: CodeType | None = None
    source: str | None = None
    language: str | None = None
    timeout: int | None = None
    url: str | None = None

    def apply(self, code: Code) -> Code:
        changed = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None
        }
        return dataclasses.replace(code, **changed)


@dataclass
class CodeRun:
    id: str
    code_id: str
    status: RunStatus
    result: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    body: str = ""
    headers: dict[str, list[str]] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    mongo_object_id: str | None = None
    """The run's MongoDB id before the old service moved to PostgreSQL (rows it migrated)."""
    code_mongo_id: str | None = None
    """The code's MongoDB id, when the run was asked for by it (old clients' ObjectId paths)."""
    version: int | None = None
    """The number of the code version it ran (None: a run from before versions)."""

    def to_json(self) -> dict[str, Any]:
        """The old service's CodeRun JSON; ``extra``, ``params`` and ``headers`` it stored as
        JSON null stay null; the MongoDB ids appear when the row has them."""
        document = {
            "id": self.id,
            "code_id": self.code_id,
            "status": str(self.status),
            "result": self.result,
            "extra": self.extra,
            "params": self.params,
            "body": self.body,
            "headers": self.headers,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }
        if self.mongo_object_id:
            document["mongo_object_id"] = self.mongo_object_id
        if self.code_mongo_id:
            document["code_mongo_id"] = self.code_mongo_id
        if self.version is not None:
            document["version"] = self.version
        return document


@dataclass
class CodeLog:
    id: str
    run_id: str
    code_id: str
    type: LogType
    content: str
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        if len(self.content) > MAX_LOG_CONTENT:
            self.content = self.content[:MAX_LOG_CONTENT]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "run_id": self.run_id,
            "code_id": self.code_id,
            "type": str(self.type),
            "content": self.content,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }


@dataclass
class CodeLib:
    id: str
    name: str
    language: str
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass
class Authorization:
    user_email: str
    role: Role


@dataclass
class Project:
    id: str
    uuid: str
    name: str
    authorizations: list[Authorization] = field(default_factory=list)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    def to_json(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "name": self.name,
            "authorizations": [
                {"user_email": a.user_email, "role": int(a.role)} for a in self.authorizations
            ],
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }


@dataclass
class UserPermission:
    id: str
    project_uuid: str
    email: str
    role: Role
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    def to_json(self) -> dict[str, Any]:
        return {
            "project_uuid": self.project_uuid,
            "email": self.email,
            "role": int(self.role),
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }


@dataclass
class Page:
    """One page of a listing (used for code logs: 20 a page)."""

    items: list[Any]
    total: int
    page: int
    per_page: int

    def __post_init__(self) -> None:
        if self.per_page < 1:
            raise ValueError("per_page must be at least 1")

    @property
    def last_page(self) -> int:
        """0 when there is nothing, as the old service answered."""
        return -(-self.total // self.per_page)


@dataclass
class ProjectSecret:
    """A project secret as stored: its value only ever encrypted (``ciphertext``)."""

    project_uuid: str
    name: str
    ciphertext: str = field(repr=False)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    def to_json(self) -> dict[str, Any]:
        """What the API shows: never the value, not even encrypted."""
        return {
            "project_uuid": self.project_uuid,
            "name": self.name,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }
