"""What a store keeps for schedules (``Store.schedules``).

``codeactions_core.testing.schedule_store_contract`` is the suite every store must pass.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from codeactions_core.scheduling.model import (
    FiringStatus,
    NewSchedule,
    Schedule,
    ScheduleFiring,
    TargetType,
)


class ScheduleRepository(Protocol):
    def create(self, new: NewSchedule) -> Schedule: ...

    def get(self, schedule_id: str) -> Schedule | None: ...

    def list_by_target(self, target_type: TargetType, target_id: str) -> list[Schedule]:
        """A code's or flow's schedules, oldest first."""

    def delete(self, schedule_id: str) -> bool:
        """Delete a schedule and its firings."""

    def delete_for_target(self, target_type: TargetType, target_id: str) -> int:
        """Delete a (deleted) code's or flow's schedules and their firings; how many."""

    def due(self, now: datetime, limit: int) -> list[Schedule]:
        """Schedules whose ``next_fire_at`` is at or before ``now``, earliest first."""

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
        """Move a schedule past its due occurrences, only while its ``next_fire_at`` is still
        ``expected_next`` (another scheduler did not move it first): ``next_fire_at``, and
        ``last_fired_at`` = ``fired`` when given; adds ``missed`` to the count and sets
        ``last_missed_at`` when given. True when it moved it."""

    def claim_firing(
        self, schedule_id: str, scheduled_for: datetime, holder: str
    ) -> ScheduleFiring | None:
        """Record that ``holder`` fires the occurrence ``scheduled_for`` (status started);
        None when that occurrence was claimed already (exactly one claim per occurrence), or
        when the schedule does not exist (deleted meanwhile)."""

    def finish_firing(
        self,
        firing_id: str,
        *,
        status: FiringStatus,
        run_id: str | None = None,
        execution_id: str | None = None,
        error: str = "",
    ) -> ScheduleFiring | None: ...

    def firings(self, schedule_id: str, limit: int = 100) -> list[ScheduleFiring]:
        """A schedule's firings, newest occurrence first."""
