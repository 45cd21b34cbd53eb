"""Flow documents <-> flow entities (collections new in this service, not the old one's).

========================  ==================================================================
collection (model)        fields
========================  ==================================================================
``flow_definitions``      name, description, project_uuid, created_by, is_active, created_at,
(FlowDefinition)          updated_at, publish_seq (counter of publications, see ``flows``)
``flow_versions``         flow_definition_id (ObjectId), version_number, steps, status,
(FlowVersion)             published_at, publish_seq, created_by, change_notes, created_at
``flow_executions``       flow_definition_id, flow_version_id (ObjectIds), lead_id, status,
(FlowExecution)           logs, result, error_message, context, executed_by, created_at,
                          started_at, finished_at, next_step, revision, lease_owner,
                          lease_expires_at, resume_at, cancel_requested
========================  ==================================================================

Ids are ObjectIds (their hex string in the model); steps, logs, result and
context are stored as BSON documents, so times are kept to the millisecond.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bson import ObjectId

from codeactions_core.flows.model import (
    ExecutionStatus,
    FlowDefinition,
    FlowExecution,
    FlowVersion,
    NewExecution,
    NewFlow,
    VersionStatus,
)
from codeactions_mongo.fields import bson_time, enum_value, mapping, read_time, reference_text, text

FLOW_DEFINITIONS = "flow_definitions"
FLOW_VERSIONS = "flow_versions"
FLOW_EXECUTIONS = "flow_executions"

UNFINISHED = [str(ExecutionStatus.PENDING), str(ExecutionStatus.RUNNING)]


def optional_time(value: object) -> datetime | None:
    return bson_time(value) if isinstance(value, datetime) else None


def items(value: object) -> list[Any]:
    """A stored array; missing or null reads as empty."""
    return list(value) if isinstance(value, list) else []


# -- definitions ------------------------------------------------------------------------


def definition_document(new: NewFlow, moment: datetime) -> dict[str, Any]:
    return {
        "_id": ObjectId(),
        "name": new.name,
        "description": new.description,
        "project_uuid": new.project_uuid,
        "created_by": new.created_by,
        "is_active": True,
        "created_at": moment,
        "updated_at": moment,
        "publish_seq": 0,
    }


def to_definition(document: Mapping[str, Any]) -> FlowDefinition:
    return FlowDefinition(
        id=str(document["_id"]),
        name=text(document.get("name")),
        project_uuid=text(document.get("project_uuid")),
        description=text(document.get("description")),
        created_by=text(document.get("created_by")),
        is_active=bool(document.get("is_active", True)),
        created_at=read_time(document, "created_at"),
        updated_at=read_time(document, "updated_at", "created_at"),
    )


# -- versions ---------------------------------------------------------------------------


def version_document(
    flow_id: ObjectId,
    number: int,
    steps: list[dict[str, Any]],
    change_notes: str,
    created_by: str,
    moment: datetime,
) -> dict[str, Any]:
    return {
        "_id": ObjectId(),
        "flow_definition_id": flow_id,
        "version_number": number,
        "steps": steps,
        "status": str(VersionStatus.DRAFT),
        "published_at": None,
        "publish_seq": None,
        "created_by": created_by,
        "change_notes": change_notes,
        "created_at": moment,
    }


def to_version(document: Mapping[str, Any]) -> FlowVersion:
    return FlowVersion(
        id=str(document["_id"]),
        flow_definition_id=reference_text(document.get("flow_definition_id")),
        version_number=int(document.get("version_number") or 0),
        steps=items(document.get("steps")),
        status=enum_value(VersionStatus, document.get("status"), VersionStatus.ARCHIVED),
        published_at=optional_time(document.get("published_at")),
        created_by=text(document.get("created_by")),
        change_notes=text(document.get("change_notes")),
        created_at=read_time(document, "created_at"),
    )


# -- executions -------------------------------------------------------------------------


def execution_document(
    new: NewExecution, flow_id: ObjectId, version_id: ObjectId, moment: datetime
) -> dict[str, Any]:
    return {
        "_id": ObjectId(),
        "flow_definition_id": flow_id,
        "flow_version_id": version_id,
        "lead_id": new.lead_id,
        "status": str(ExecutionStatus.PENDING),
        "logs": [],
        "result": {},
        "error_message": "",
        "context": dict(new.context),
        "executed_by": new.executed_by,
        "created_at": moment,
        "started_at": None,
        "finished_at": None,
        "next_step": 0,
        "revision": 0,
        "lease_owner": None,
        "lease_expires_at": None,
        "resume_at": moment,
        "cancel_requested": False,
    }


def execution_state(execution: FlowExecution) -> dict[str, Any]:
    """The ``$set`` of a save: what a worker changes (never the lease or cancel_requested)."""
    return {
        "status": str(execution.status),
        "logs": execution.logs,
        "result": execution.result,
        "error_message": execution.error_message,
        "started_at": _time_or_none(execution.started_at),
        "finished_at": _time_or_none(execution.finished_at),
        "next_step": execution.next_step,
        "resume_at": _time_or_none(execution.resume_at),
    }


def to_execution(document: Mapping[str, Any]) -> FlowExecution:
    lead_id = document.get("lead_id")
    return FlowExecution(
        id=str(document["_id"]),
        flow_definition_id=reference_text(document.get("flow_definition_id")),
        flow_version_id=reference_text(document.get("flow_version_id")),
        status=enum_value(ExecutionStatus, document.get("status"), ExecutionStatus.FAILED),
        lead_id=None if lead_id is None else str(lead_id),
        logs=items(document.get("logs")),
        result=mapping(document.get("result")),
        error_message=text(document.get("error_message")),
        context=mapping(document.get("context")),
        executed_by=text(document.get("executed_by")),
        created_at=read_time(document, "created_at"),
        started_at=optional_time(document.get("started_at")),
        finished_at=optional_time(document.get("finished_at")),
        next_step=int(document.get("next_step") or 0),
        revision=int(document.get("revision") or 0),
        lease_owner=document.get("lease_owner"),
        lease_expires_at=optional_time(document.get("lease_expires_at")),
        resume_at=optional_time(document.get("resume_at")),
        cancel_requested=bool(document.get("cancel_requested")),
    )


def _time_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else bson_time(moment)
