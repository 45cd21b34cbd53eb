"""Documents <-> model entities, in the collections and field names of the old Go service.

Every collection keeps ``_id`` as an ObjectId; the model's ids are its hex
string (the first ``coderun`` version stored that string as ``_id``: lookups
match both). Field names are the ``bson`` tags of the old service's structs
(Go's driver lowercases untagged field names, hence ``useremail``). Where the
old service changed a name between versions, documents are read under every
spelling it used and written under the one its latest version reads; schema
migration 2 copies old names onto the new ones so that queries and sorts see
every document.

========================  ==================================================================
collection (model)        fields
========================  ==================================================================
``code`` (Code)           name, type (flow|endpoint; very old "user" reads as flow), source,
                          language (missing: python), url, project_uuid, timeout (missing or
                          0: 60), created_at (read also ``creted_at``), updated_at
``coderun`` (CodeRun)     code_id (ObjectId; hex string also read), status, result, extra,
                          params, body, headers, created_at (read also ``creted_at``),
                          updated_at
``codelog`` (CodeLog)     run_id, code_id (ObjectIds; hex strings also read), type, content,
                          created_at (read also ``creted_at``), updated_at; lines of one
                          instant are ordered by their ObjectIds (made in write order)
``project`` (Project)     uuid, name, authorizations ``[{useremail, role}]`` with role a
                          string as the old struct declares it (``user_email`` and integer
                          roles also read), created_at, updated_at (read also the untagged
                          ``createdat``/``updatedat`` of older versions)
``user_permissions``      project_uuid, email, role (integer 1-3), created_at, updated_at
(UserPermission)
``codelib`` (CodeLib)     name, language, created_at, updated_at
========================  ==================================================================

Sources (weni-ai/flows-code-actions): collection names in ``internal/*/mongodb/*.go``
(``db.Collection("code")``, ``"coderun"``, ``"codelog"``, ``"codelib"``,
``"project"``, ``"user_permissions"``) and POSTGRESQL_MIGRATION.md's mongoexport
list; fields in the structs of ``internal/code/code.go``,
``internal/coderun/coderun.go``, ``internal/codelog/codelog.go``,
``internal/codelib/codelib.go``, ``internal/project/project.go`` and
``internal/permission/permission.go`` (older versions tag ``creted_at``).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bson import ObjectId

from codeactions_core.model import (
    MAX_LOG_CONTENT,
    Authorization,
    Code,
    CodeChanges,
    CodeLib,
    CodeLog,
    CodeRun,
    CodeType,
    LogType,
    NewCode,
    Project,
    Role,
    RunStatus,
    UserPermission,
)
from codeactions_core.store import NewRun
from codeactions_mongo.fields import (
    bson_time,
    enum_value,
    mapping,
    object_id,
    read_time,
    reference,
    reference_text,
    text,
)

CODES = "code"
RUNS = "coderun"
LOGS = "codelog"
PROJECTS = "project"
PERMISSIONS = "user_permissions"
LIBS = "codelib"

DEFAULT_TIMEOUT = 60
DEFAULT_LANGUAGE = "python"  # the only language before the field existed
LEGACY_CODE_TYPES = {"user": CodeType.FLOW}  # the first name of flow codes
ROLE_NAMES = {role.name.lower(): role for role in Role}

CREATED = ("created_at", "creted_at")
UPDATED = ("updated_at", "created_at", "creted_at")
PROJECT_CREATED = ("created_at", "createdat")
PROJECT_UPDATED = ("updated_at", "updatedat", *PROJECT_CREATED)

# (collection, name the old service once wrote a time under, name written and queried now)
LEGACY_TIME_FIELDS = (
    (CODES, "creted_at", "created_at"),
    (RUNS, "creted_at", "created_at"),
    (LOGS, "creted_at", "created_at"),
    (PROJECTS, "createdat", "created_at"),
    (PROJECTS, "updatedat", "updated_at"),
)


def _id_text(document: Mapping[str, Any]) -> str:
    return str(document["_id"])


# -- codes ------------------------------------------------------------------------------


def code_document(new: NewCode, moment: datetime) -> dict[str, Any]:
    return {
        "_id": ObjectId(),
        "name": new.name,
        "type": str(new.type),
        "source": new.source,
        "language": new.language,
        "url": new.url,
        "project_uuid": new.project_uuid,
        "timeout": new.timeout,
        "created_at": moment,
        "updated_at": moment,
    }


def code_changes(changes: CodeChanges, moment: datetime) -> dict[str, Any]:
    """The ``$set`` of a partial update: the given fields and ``updated_at``."""
    fields: dict[str, Any] = {}
    for item in dataclasses.fields(changes):
        value = getattr(changes, item.name)
        if value is not None:
            fields[item.name] = str(value) if isinstance(value, enum.Enum) else value
    fields["updated_at"] = moment
    return fields


def to_code(document: Mapping[str, Any]) -> Code:
    return Code(
        id=_id_text(document),
        name=text(document.get("name")),
        type=enum_value(CodeType, document.get("type"), CodeType.FLOW, LEGACY_CODE_TYPES),
        source=text(document.get("source")),
        language=text(document.get("language")) or DEFAULT_LANGUAGE,
        url=text(document.get("url")),
        project_uuid=text(document.get("project_uuid")),
        timeout=int(document.get("timeout") or DEFAULT_TIMEOUT),
        created_at=read_time(document, *CREATED),
        updated_at=read_time(document, *UPDATED),
        version=document.get("version"),
    )


# -- runs -------------------------------------------------------------------------------


def run_document(new: NewRun, moment: datetime) -> dict[str, Any]:
    return {
        "_id": ObjectId(),
        "code_id": reference(new.code_id),
        "status": str(new.status),
        "result": new.result,
        "extra": {},
        "params": dict(new.params),
        "body": new.body,
        "headers": {name: list(values) for name, values in new.headers.items()},
        "created_at": moment,
        "updated_at": moment,
        **({"owner": new.owner} if new.owner else {}),
        **({"lease_expires_at": new.lease_expires_at} if new.lease_expires_at else {}),
        **({"code_version": new.version} if new.version is not None else {}),
    }


def to_headers(value: object) -> dict[str, list[str]]:
    """Stored headers (name -> list of values; a lone value also read) as the model's."""
    return {
        str(name): [text(item) for item in values] if isinstance(values, list) else [text(values)]
        for name, values in mapping(value).items()
    }


def to_run(document: Mapping[str, Any]) -> CodeRun:
    return CodeRun(
        id=_id_text(document),
        code_id=reference_text(document.get("code_id")),
        status=enum_value(RunStatus, document.get("status"), RunStatus.FAILED),
        result=text(document.get("result")),
        extra=mapping(document.get("extra")),
        params=mapping(document.get("params")),
        body=text(document.get("body")),
        headers=to_headers(document.get("headers")),
        created_at=read_time(document, *CREATED),
        updated_at=read_time(document, *UPDATED),
        version=document.get("code_version"),
    )


# -- logs -------------------------------------------------------------------------------


def log_document(log: CodeLog) -> dict[str, Any]:
    """A log line; it keeps its id when that is an ObjectId, else gets a new (ordered) one."""
    return {
        "_id": object_id(log.id) or ObjectId(),
        "run_id": reference(log.run_id),
        "code_id": reference(log.code_id),
        "type": str(log.type),
        "content": log.content[:MAX_LOG_CONTENT],
        "created_at": bson_time(log.created_at),
        "updated_at": bson_time(log.updated_at),
    }


def to_log(document: Mapping[str, Any]) -> CodeLog:
    return CodeLog(
        id=_id_text(document),
        run_id=reference_text(document.get("run_id")),
        code_id=reference_text(document.get("code_id")),
        type=enum_value(LogType, document.get("type"), LogType.INFO),
        content=text(document.get("content")),
        created_at=read_time(document, *CREATED),
        updated_at=read_time(document, *UPDATED),
    )


# -- projects and permissions -----------------------------------------------------------


def to_role(value: object) -> Role:
    """A stored role: an integer, its digits as text, or a role name; unknown is a viewer."""
    if isinstance(value, str):
        word = value.strip().lower()
        value = int(word) if word.isdigit() else ROLE_NAMES.get(word)
    return enum_value(Role, value, Role.VIEWER)


def authorization_documents(authorizations: Sequence[Authorization]) -> list[dict[str, str]]:
    """Authorizations as the old struct reads them: untagged ``UserEmail``, string ``Role``."""
    return [{"useremail": item.user_email, "role": str(int(item.role))} for item in authorizations]


def to_authorizations(value: object) -> list[Authorization]:
    items = value if isinstance(value, list) else []
    return [
        Authorization(
            user_email=text(item.get("user_email") or item.get("useremail")),
            role=to_role(item.get("role")),
        )
        for item in items
        if isinstance(item, Mapping)
    ]


def to_project(document: Mapping[str, Any]) -> Project:
    return Project(
        id=_id_text(document),
        uuid=text(document.get("uuid")),
        name=text(document.get("name")),
        authorizations=to_authorizations(document.get("authorizations")),
        created_at=read_time(document, *PROJECT_CREATED),
        updated_at=read_time(document, *PROJECT_UPDATED),
    )


def to_permission(document: Mapping[str, Any]) -> UserPermission:
    return UserPermission(
        id=_id_text(document),
        project_uuid=text(document.get("project_uuid")),
        email=text(document.get("email")),
        role=to_role(document.get("role")),
        created_at=read_time(document, *CREATED),
        updated_at=read_time(document, *UPDATED),
    )


# -- libraries --------------------------------------------------------------------------


def to_lib(document: Mapping[str, Any]) -> CodeLib:
    return CodeLib(
        id=_id_text(document),
        name=text(document.get("name")),
        language=text(document.get("language")),
        created_at=read_time(document, *CREATED),
        updated_at=read_time(document, *UPDATED),
    )
