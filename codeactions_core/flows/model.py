"""Flows: definitions, their versions (the steps) and executions, with their JSON shapes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from codeactions_core.model import rfc3339, utcnow


class VersionStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"


class ExecutionStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (
            ExecutionStatus.COMPLETED,
            ExecutionStatus.FAILED,
            ExecutionStatus.CANCELLED,
        )


class StepStatus(enum.StrEnum):
    RUNNING = "running"
    WAITING = "waiting"
    """The step asked to be resumed later (``wait``); no thread holds it meanwhile."""
    COMPLETED = "completed"
    FAILED = "failed"


def optional_time(moment: datetime | None) -> str | None:
    return rfc3339(moment) if moment else None


@dataclass
class FlowDefinition:
    id: str
    name: str
    project_uuid: str
    description: str = ""
    created_by: str = ""
    is_active: bool = True
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "project_uuid": self.project_uuid,
            "created_by": self.created_by,
            "is_active": self.is_active,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }


@dataclass
class NewFlow:
    name: str
    project_uuid: str
    description: str = ""
    created_by: str = ""


@dataclass
class FlowVersion:
    id: str
    flow_definition_id: str
    version_number: int
    steps: list[dict[str, Any]]
    """Each step: ``{"id", "type", "name", "config": {...}, "continue_on_error": bool}``."""
    status: VersionStatus = VersionStatus.DRAFT
    published_at: datetime | None = None
    created_by: str = ""
    change_notes: str = ""
    created_at: datetime = field(default_factory=utcnow)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "flow_definition_id": self.flow_definition_id,
            "version_number": self.version_number,
            "steps": self.steps,
            "status": str(self.status),
            "published_at": optional_time(self.published_at),
            "created_by": self.created_by,
            "change_notes": self.change_notes,
            "created_at": rfc3339(self.created_at),
        }


@dataclass
class FlowExecution:
    """One execution: immutable history once terminal.

    ``logs`` holds a record per step run (see :func:`step_record`); ``result``
    the results of the completed steps by step id; ``context`` what the
    execution was started with (``lead_id``, ``variables``).

    The remaining fields are the engine's state machine: ``next_step`` is the
    index of the step to run (or resume) next; a worker holds the execution
    while ``lease_owner`` is set and ``lease_expires_at`` is in the future;
    ``resume_at`` is when the execution is due to be driven next (set on every
    write of a non-terminal execution: now, or when a wait ends); ``revision``
    grows with every claim.
    """

    id: str
    flow_definition_id: str
    flow_version_id: str
    status: ExecutionStatus = ExecutionStatus.PENDING
    lead_id: str | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    error_message: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    executed_by: str = ""
    created_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    next_step: int = 0
    revision: int = 0
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    resume_at: datetime | None = None
    cancel_requested: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "flow_definition_id": self.flow_definition_id,
            "flow_version_id": self.flow_version_id,
            "lead_id": self.lead_id,
            "status": str(self.status),
            "logs": self.logs,
            "result": self.result,
            "error_message": self.error_message,
            "context": self.context,
            "executed_by": self.executed_by,
            "created_at": rfc3339(self.created_at),
            "started_at": optional_time(self.started_at),
            "finished_at": optional_time(self.finished_at),
            "next_step": self.next_step,
            "resume_at": optional_time(self.resume_at),
            "cancel_requested": self.cancel_requested,
        }


@dataclass
class NewExecution:
    flow_definition_id: str
    flow_version_id: str
    lead_id: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    executed_by: str = ""
