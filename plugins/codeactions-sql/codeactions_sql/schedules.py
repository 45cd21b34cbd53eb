"""Schedules and their firings on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import peewee

from codeactions_core.model import utcnow
from codeactions_core.scheduling.model import (
    FiringStatus,
    NewSchedule,
    Schedule,
    ScheduleFiring,
    TargetType,
)
from codeactions_sql.fields import is_uuid
from codeactions_sql.repositories import database_errors_as_store_errors, new_id


def to_schedule(row: Any) -> Schedule:
    return Schedule(
        id=str(row.id),
        target_type=TargetType(row.target_type),
        target_id=str(row.target_id),
        project_uuid=row.project_uuid,
        cron=row.cron,
        timezone=row.timezone,
        next_fire_at=row.next_fire_at,
        params=row.params or {},
        variables=row.variables or {},
        version=row.version,
        created_by=row.created_by or "",
        last_fired_at=row.last_fired_at,
        missed=int(row.missed or 0),
        last_missed_at=row.last_missed_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def to_firing(row: Any) -> ScheduleFiring:
    return ScheduleFiring(
        id=str(row.id),
        schedule_id=str(row.schedule_id),
        scheduled_for=row.scheduled_for,
        status=FiringStatus(row.status),
        fired_at=row.fired_at,
        run_id=str(row.run_id) if row.run_id else None,
        execution_id=str(row.execution_id) if row.execution_id else None,
        error=row.error or "",
        holder=row.holder or "",
    )


@database_errors_as_store_errors
class SqlSchedules:
    def __init__(self, schedules: type[peewee.Model], firings: type[peewee.Model]) -> None:
        self.model = schedules
        self.firings_model = firings

    def create(self, new: NewSchedule) -> Schedule:
        now = utcnow()
        row = self.model.create(
            id=new_id(),
            target_type=str(new.target_type),
            target_id=new.target_id,
            project_uuid=new.project_uuid,
            cron=new.cron,
            timezone=new.timezone,
            params=dict(new.params),
            variables=dict(new.variables),
            version=new.version,
            created_by=new.created_by,
            next_fire_at=new.next_fire_at,
            missed=0,
            created_at=now,
            updated_at=now,
        )
        return to_schedule(row)

    def get(self, schedule_id: str) -> Schedule | None:
        if not is_uuid(schedule_id):
            return None
        row = self.model.get_or_none(self.model.id == schedule_id)
        return to_schedule(row) if row else None

    def list_by_target(self, target_type: TargetType, target_id: str) -> list[Schedule]:
        if not is_uuid(target_id):
            return []
        query = self.model.select().where(
            (self.model.target_type == str(target_type)) & (self.model.target_id == target_id)
        )
        return [to_schedule(row) for row in query.order_by(self.model.created_at, self.model.id)]

    def delete(self, schedule_id: str) -> bool:
        if not is_uuid(schedule_id):
            return False
        with self.model._meta.database.atomic():
            self.firings_model.delete().where(
                self.firings_model.schedule_id == schedule_id
            ).execute()
            return self.model.delete().where(self.model.id == schedule_id).execute() > 0

    def delete_for_target(self, target_type: TargetType, target_id: str) -> int:
        return sum(
            self.delete(schedule.id) for schedule in self.list_by_target(target_type, target_id)
        )

    def due(self, now: datetime, limit: int) -> list[Schedule]:
        query = (
            self.model.select()
            .where(self.model.next_fire_at <= now)
            .order_by(self.model.next_fire_at, self.model.id)
            .limit(limit)
        )
        return [to_schedule(row) for row in query]

    def advance(
        self,
        schedule_id: str,
        *,
        expected_next: datetime,
        next_fire_at: datetime,
        fired: datetime | None,
        missed: int,
        last_missed_at: datetime | None,
    ) -> bool:
        if not is_uuid(schedule_id):
            return False
        changes: dict[Any, Any] = {
            self.model.next_fire_at: next_fire_at,
            self.model.missed: self.model.missed + missed,
            self.model.updated_at: utcnow(),
        }
        if fired is not None:
            changes[self.model.last_fired_at] = fired
        if last_missed_at is not None:
            changes[self.model.last_missed_at] = last_missed_at
        updated = self.model.update(changes).where(
            (self.model.id == schedule_id) & (self.model.next_fire_at == expected_next)
        )
        return updated.execute() > 0

    def claim_firing(
        self, schedule_id: str, scheduled_for: datetime, holder: str
    ) -> ScheduleFiring | None:
        if not is_uuid(schedule_id):
            return None
        if self.model.get_or_none(self.model.id == schedule_id) is None:
            return None
        firing_id = new_id()
        self.firings_model.insert(
            id=firing_id,
            schedule_id=schedule_id,
            scheduled_for=scheduled_for,
            fired_at=utcnow(),
            status=str(FiringStatus.STARTED),
            error="",
            holder=holder,
        ).on_conflict_ignore().execute()
        row = self.firings_model.get_or_none(self.firings_model.id == firing_id)
        return to_firing(row) if row is not None else None  # absent: another claimed it

    def finish_firing(
        self,
        firing_id: str,
        *,
        status: FiringStatus,
        run_id: str | None = None,
        execution_id: str | None = None,
        error: str = "",
    ) -> ScheduleFiring | None:
        if not is_uuid(firing_id):
            return None
        self.firings_model.update(
            status=str(status),
            run_id=run_id,
            execution_id=execution_id,
            error=error,
        ).where(self.firings_model.id == firing_id).execute()
        row = self.firings_model.get_or_none(self.firings_model.id == firing_id)
        return to_firing(row) if row else None

    def firings(self, schedule_id: str, limit: int = 100) -> list[ScheduleFiring]:
        if not is_uuid(schedule_id):
            return []
        query = (
            self.firings_model.select()
            .where(self.firings_model.schedule_id == schedule_id)
            .order_by(self.firings_model.scheduled_for.desc())
            .limit(limit)
        )
        return [to_firing(row) for row in query]
