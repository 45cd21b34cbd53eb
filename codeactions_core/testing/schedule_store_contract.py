"""The part of the store contract about schedules (``Store.schedules``); mixed into
:class:`~codeactions_core.testing.store_contract.StoreContract`."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from codeactions_core.scheduling.model import FiringStatus, NewSchedule, TargetType
from codeactions_core.store import Store
from codeactions_core.testing.log_store_contract import NOT_IDS
from codeactions_core.testing.records import new_code

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class ScheduleStoreContract:
    def _schedule(self, store: Store, next_fire_at: datetime = T0, **overrides: object):
        code = store.codes.create(new_code())
        fields: dict[str, object] = {
            "target_type": TargetType.CODE,
            "target_id": code.id,
            "project_uuid": "project-a",
            "cron": "*/5 * * * *",
            "timezone": "Europe/Lisbon",
            "next_fire_at": next_fire_at,
            "params": {"name": "ana ✓"},
            "version": 2,
            "created_by": "ana@example.org",
        }
        fields.update(overrides)
        return store.schedules.create(NewSchedule(**fields))  # type: ignore[arg-type]

    def test_schedule_round_trip(self, store: Store) -> None:
        created = self._schedule(store, variables={"lead": {"id": 7}})
        fetched = store.schedules.get(created.id)
        assert fetched == created
        assert (fetched.cron, fetched.timezone, fetched.params, fetched.variables) == (
            "*/5 * * * *",
            "Europe/Lisbon",
            {"name": "ana ✓"},
            {"lead": {"id": 7}},
        )
        assert (fetched.version, fetched.missed, fetched.last_fired_at) == (2, 0, None)
        assert fetched.next_fire_at == T0
        assert store.schedules.list_by_target(TargetType.CODE, created.target_id) == [fetched]
        assert store.schedules.list_by_target(TargetType.FLOW, created.target_id) == []

    def test_due_schedules_earliest_first(self, store: Store) -> None:
        later = self._schedule(store, T0 + timedelta(minutes=1))
        earlier = self._schedule(store, T0)
        self._schedule(store, T0 + timedelta(hours=1))
        due = [
            s.id
            for s in store.schedules.due(T0 + timedelta(minutes=1), 10)
            if s.id in (earlier.id, later.id)
        ]
        assert due == [earlier.id, later.id]
        assert all(
            s.next_fire_at <= T0 + timedelta(minutes=1)
            for s in store.schedules.due(T0 + timedelta(minutes=1), 10)
        )

    def test_advance_only_from_the_expected_occurrence(self, store: Store) -> None:
        schedule = self._schedule(store)
        nxt = T0 + timedelta(minutes=5)
        missed_at = T0 - timedelta(minutes=5)
        assert store.schedules.advance(
            schedule.id,
            expected_next=T0,
            next_fire_at=nxt,
            fired=T0,
            missed=3,
            last_missed_at=missed_at,
        )
        assert not store.schedules.advance(  # another replica moved it already
            schedule.id,
            expected_next=T0,
            next_fire_at=nxt,
            fired=T0,
            missed=3,
            last_missed_at=None,
        )
        moved = store.schedules.get(schedule.id)
        assert (moved.next_fire_at, moved.last_fired_at, moved.missed, moved.last_missed_at) == (
            nxt,
            T0,
            3,
            missed_at,
        )
        assert store.schedules.advance(
            schedule.id,
            expected_next=nxt,
            next_fire_at=nxt + timedelta(minutes=5),
            fired=None,
            missed=2,
            last_missed_at=None,
        )
        assert (
            store.schedules.get(schedule.id).missed,
            store.schedules.get(schedule.id).last_fired_at,
        ) == (5, T0)

    def test_one_claim_per_occurrence(self, store: Store) -> None:
        schedule = self._schedule(store)
        claims: list[object] = []

        def claim(holder: str) -> None:
            try:
                claims.append(store.schedules.claim_firing(schedule.id, T0, holder))
            finally:
                store.release()

        threads = [threading.Thread(target=claim, args=(f"h{i}",)) for i in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        won = [c for c in claims if c is not None]
        assert len(claims) == 5 and len(won) == 1
        assert won[0].status is FiringStatus.STARTED and won[0].scheduled_for == T0
        assert store.schedules.claim_firing(schedule.id, T0 + timedelta(minutes=5), "h") is not None

    def test_firings_record_what_fired(self, store: Store) -> None:
        schedule = self._schedule(store)
        first = store.schedules.claim_firing(schedule.id, T0, "h")
        second = store.schedules.claim_firing(schedule.id, T0 + timedelta(minutes=5), "h")
        run_id = "5b0c0a50-0000-4000-8000-000000000001"
        done = store.schedules.finish_firing(first.id, status=FiringStatus.FIRED, run_id=run_id)
        failed = store.schedules.finish_firing(
            second.id, status=FiringStatus.FAILED, error="code not found"
        )
        assert (done.status, done.run_id, done.execution_id) == (FiringStatus.FIRED, run_id, None)
        assert (failed.status, failed.error) == (FiringStatus.FAILED, "code not found")
        assert [f.id for f in store.schedules.firings(schedule.id)] == [second.id, first.id]
        assert store.schedules.delete(schedule.id) is True
        assert store.schedules.get(schedule.id) is None
        assert store.schedules.firings(schedule.id) == []
        assert store.schedules.delete(schedule.id) is False

    def test_delete_for_target(self, store: Store) -> None:
        schedule = self._schedule(store)
        self._schedule(store, target_id=schedule.target_id)
        assert store.schedules.delete_for_target(TargetType.CODE, schedule.target_id) == 2
        assert store.schedules.list_by_target(TargetType.CODE, schedule.target_id) == []

    def test_unknown_schedules_are_none(self, store: Store) -> None:
        for bad_id in NOT_IDS:  # one test: each id costs a fresh store on PostgreSQL
            assert store.schedules.get(bad_id) is None
            assert store.schedules.delete(bad_id) is False
            assert store.schedules.list_by_target(TargetType.CODE, bad_id) == []
            assert store.schedules.firings(bad_id) == []
            assert store.schedules.finish_firing(bad_id, status=FiringStatus.FIRED) is None
            assert store.schedules.claim_firing(bad_id, T0, "h") is None
            assert not store.schedules.advance(
                bad_id,
                expected_next=T0,
                next_fire_at=T0,
                fired=None,
                missed=0,
                last_missed_at=None,
            )
