"""What a schedule is, and the record of each time it fired."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from codeactions_core.model import rfc3339, utcnow


class TargetType(enum.StrEnum):
    CODE = "code"
    FLOW = "flow"


class FiringStatus(enum.StrEnum):
    STARTED = "started"
    """Claimed by a scheduler; the run or execution is being started."""
    FIRED = "fired"
    """The run finished or the execution was started: ``run_id`` / ``execution_id``."""
    FAILED = "failed"
    """The run or execution could not be started: ``error`` says why."""


def _time(moment: datetime | None) -> str | None:
    return rfc3339(moment) if moment is not None else None


@dataclass
class NewSchedule:
    target_type: TargetType
    target_id: str
    project_uuid: str
    cron: str
    timezone: str
    next_fire_at: datetime
    params: dict[str, str] = field(default_factory=dict)
    """Query parameters a code gets."""
    variables: dict[str, Any] = field(default_factory=dict)
    """Variables a flow execution gets."""
    version: int | None = None
    """A code version (or flow version) pinned; None runs the current (published) one."""
    created_by: str = ""


@dataclass
class Schedule:
    id: str
    target_type: TargetType
    target_id: str
    project_uuid: str
    cron: str
    timezone: str
    next_fire_at: datetime
    params: dict[str, str] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    version: int | None = None
    created_by: str = ""
    last_fired_at: datetime | None = None
    """The occurrence last fired (its scheduled time)."""
    missed: int = 0
    """Occurrences that passed while no scheduler ran: reported, never replayed."""
    last_missed_at: datetime | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "target_type": str(self.target_type),
            "target_id": self.target_id,
            "project_uuid": self.project_uuid,
            "cron": self.cron,
            "timezone": self.timezone,
            "params": self.params,
            "variables": self.variables,
            "version": self.version,
            "created_by": self.created_by,
            "next_fire_at": rfc3339(self.next_fire_at),
            "last_fired_at": _time(self.last_fired_at),
            "missed": self.missed,
            "last_missed_at": _time(self.last_missed_at),
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }


@dataclass
class ScheduleFiring:
    id: str
    schedule_id: str
    scheduled_for: datetime
    """The occurrence fired: one firing per occurrence, whichever replica fired it."""
    status: FiringStatus
    fired_at: datetime = field(default_factory=utcnow)
    run_id: str | None = None
    execution_id: str | None = None
    error: str = ""
    holder: str = ""
    """The scheduler process that fired it."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "schedule_id": self.schedule_id,
            "scheduled_for": rfc3339(self.scheduled_for),
            "fired_at": rfc3339(self.fired_at),
            "status": str(self.status),
            "run_id": self.run_id,
            "execution_id": self.execution_id,
            "error": self.error,
        }
