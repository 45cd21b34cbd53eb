"""The schedule use cases behind ``/code/{id}/schedules`` and ``/flows/{id}/schedules``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from codeactions_core.errors import InvalidInput, NotFound
from codeactions_core.flows.placeholders import to_text
from codeactions_core.model import Code, utcnow
from codeactions_core.scheduling.cron import Cron
from codeactions_core.scheduling.model import (
    NewSchedule,
    Schedule,
    ScheduleFiring,
    TargetType,
)
from codeactions_core.scheduling.store import ScheduleRepository
from codeactions_core.services.codes import CodeService, parse_version

DEFAULT_TIMEZONE = "UTC"
MAX_PARAMS = 100
FIRINGS_SHOWN = 100
FIELDS = frozenset({"cron", "timezone", "params", "variables", "version"})


class ScheduleService:
    def __init__(self, schedules: ScheduleRepository, codes: CodeService) -> None:
        self._schedules = schedules
        self._codes = codes

    def create_for_code(self, code: Code, data: Mapping[str, Any], author: str) -> Schedule:
        """``{"cron", "timezone", "params", "version"}``: ``params`` reach the code as its
        query parameters (strings); ``version`` pins a code version."""
        self._known_fields(data, allowed=FIELDS - {"variables"})
        cron = self._cron(data)
        version = data.get("version")
        if version is not None:
            version = self._codes.version(code, version).number
        return self._schedules.create(
            NewSchedule(
                target_type=TargetType.CODE,
                target_id=code.id,
                project_uuid=code.project_uuid,
                cron=cron.expression,
                timezone=cron.zone.key,
                next_fire_at=cron.next_after(utcnow()),
                params=self._params(data.get("params")),
                version=version,
                created_by=author,
            )
        )

    def create_for_flow(
        self, flow_id: str, project_uuid: str, data: Mapping[str, Any], author: str
    ) -> Schedule:
        """``{"cron", "timezone", "variables", "version"}``: ``variables`` as a flow execution
        gets them; ``version`` a flow version number (else the published one at each firing)."""
        self._known_fields(data, allowed=FIELDS - {"params"})
        cron = self._cron(data)
        variables = data.get("variables") if data.get("variables") is not None else {}
        if not isinstance(variables, dict):
            raise InvalidInput("variables must be an object")
        version = data.get("version")
        return self._schedules.create(
            NewSchedule(
                target_type=TargetType.FLOW,
                target_id=flow_id,
                project_uuid=project_uuid,
                cron=cron.expression,
                timezone=cron.zone.key,
                next_fire_at=cron.next_after(utcnow()),
                variables=variables,
                version=parse_version(version) if version is not None else None,
                created_by=author,
            )
        )

    def list(self, target_type: TargetType, target_id: str) -> list[Schedule]:
        return self._schedules.list_by_target(target_type, target_id)

    def get(self, target_type: TargetType, target_id: str, schedule_id: str) -> Schedule:
        schedule = self._schedules.get(schedule_id)
        if (
            schedule is None
            or schedule.target_type != target_type
            or schedule.target_id != target_id
        ):
            raise NotFound(f"schedule {schedule_id!r} not found on {target_type} {target_id!r}")
        return schedule

    def firings(self, schedule: Schedule) -> list[ScheduleFiring]:
        return self._schedules.firings(schedule.id, FIRINGS_SHOWN)

    def delete(self, target_type: TargetType, target_id: str, schedule_id: str) -> Schedule:
        """Delete a schedule and its firings; the schedule as it was."""
        schedule = self.get(target_type, target_id, schedule_id)
        if not self._schedules.delete(schedule.id):
            raise NotFound(f"schedule {schedule_id!r} not found")
        return schedule

    @staticmethod
    def _known_fields(data: Mapping[str, Any], allowed: frozenset[str]) -> None:
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise InvalidInput(
                f"unknown field(s) {', '.join(map(repr, unknown))}; a schedule takes "
                f"{', '.join(sorted(allowed))}"
            )

    @staticmethod
    def _cron(data: Mapping[str, Any]) -> Cron:
        zone = data.get("timezone")
        return Cron.parse(data.get("cron"), DEFAULT_TIMEZONE if zone is None else zone)

    @staticmethod
    def _params(raw: Any) -> dict[str, str]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise InvalidInput("params must be an object of parameter names and values")
        if len(raw) > MAX_PARAMS:
            raise InvalidInput(f"params has {len(raw)} entries; at most {MAX_PARAMS}")
        return {str(name): to_text(value) for name, value in raw.items()}
