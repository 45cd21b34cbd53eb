"""The contract every FlowRepository must pass (each store's ``flows``).

Subclass :class:`FlowStoreContract` in a test module as ``TestMyFlows`` and
provide a ``store`` fixture yielding a migrated, empty store::

    class TestMyFlows(FlowStoreContract):
        @pytest.fixture
        def store(self):
            yield make_my_store()

Set ``races = False`` on a subclass whose backend cannot be driven from several
threads at once (mongomock's find-and-modify is not atomic across threads):
the tests that race threads against each other then skip.

Times handed to the repository are whole milliseconds (what BSON keeps).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from codeactions_core.errors import Conflict, NotFound
from codeactions_core.flows.model import (
    ExecutionStatus,
    FlowDefinition,
    FlowExecution,
    FlowVersion,
    NewExecution,
    NewFlow,
    VersionStatus,
)
from codeactions_core.flows.store import FlowRepository as Flows
from codeactions_core.model import utcnow
from codeactions_core.store import Store
from codeactions_core.testing.log_store_contract import NOT_IDS
from codeactions_core.testing.records import assert_utc

DRAFT, PUBLISHED, ARCHIVED = VersionStatus.DRAFT, VersionStatus.PUBLISHED, VersionStatus.ARCHIVED
PENDING, RUNNING = ExecutionStatus.PENDING, ExecutionStatus.RUNNING
COMPLETED, FAILED, CANCELLED = (
    ExecutionStatus.COMPLETED,
    ExecutionStatus.FAILED,
    ExecutionStatus.CANCELLED,
)
RACERS = 8
JOIN_SECONDS = 60.0

STEPS: list[dict[str, Any]] = [
    {
        "id": "call",
        "type": "http_call",
        "name": "Chamar a API ✓",
        "continue_on_error": False,
        "config": {
            "method": "POST",
            "url": "https://example.org/{{leadId}}",
            "headers": {"X-Tag": "olá"},
            "body": {"nested": [1, 2.5, None, True, {"deep": ["日本語", "🎉"]}]},
            "retry": {"max_attempts": 3, "delay": 0.25},
        },
    },
    {
        "id": "pause",
        "type": "wait",
        "name": "",
        "continue_on_error": True,
        "config": {"seconds": 3600},
    },
]

At = Callable[[float], datetime]
"""``at(seconds)``: the test's start time plus ``seconds``."""
ExecutionFactory = Callable[..., FlowExecution]


def whole_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def race(count: int, action: Callable[[int], Any], store: Store) -> list[Any]:
    """Run ``action(i)`` in ``count`` threads released together; their results in order."""
    start = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            start.wait()
            results[index] = action(index)
        except BaseException as exc:  # noqa: BLE001  (reported below, in the test's thread)
            errors.append(exc)
        finally:
            store.release()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_SECONDS)
    assert not any(thread.is_alive() for thread in threads), "a racing thread hung"
    assert errors == []
    return results


class FlowStoreContract:
    races = True
    """False skips the tests that race threads (for backends that are not thread-safe)."""

    @pytest.fixture
    def store(self) -> Store:  # pragma: no cover - always overridden
        raise NotImplementedError("provide a `store` fixture yielding a migrated, empty store")

    @pytest.fixture
    def flows(self, store: Store) -> Flows:
        return store.flows

    @pytest.fixture
    def at(self) -> At:
        base = whole_ms(utcnow())
        return lambda seconds: base + timedelta(seconds=seconds)

    @pytest.fixture
    def flow(self, flows: Flows) -> FlowDefinition:
        return flows.create_definition(NewFlow(name="Qualificar lead", project_uuid="project-a"))

    @pytest.fixture
    def draft(self, flows: Flows, flow: FlowDefinition) -> FlowVersion:
        """Version 1 of ``flow``."""
        return flows.create_version(
            flow.id, STEPS, change_notes="first", created_by="ana@example.org"
        )

    @pytest.fixture
    def new_execution(self, flows: Flows, draft: FlowVersion) -> ExecutionFactory:
        """Executions of ``draft`` (or of the version given)."""

        def create(version: FlowVersion | None = None, **fields: Any) -> FlowExecution:
            version = version or draft
            new = NewExecution(
                flow_definition_id=version.flow_definition_id, flow_version_id=version.id, **fields
            )
            return flows.create_execution(new)

        return create

    def skip_unless_races(self) -> None:
        if not self.races:
            pytest.skip("this backend cannot be raced from threads")

    # -- definitions ----------------------------------------------------------------------

    def test_definition_round_trip(self, flows: Flows) -> None:
        created = flows.create_definition(
            NewFlow(
                name="Boas-vindas ✓",
                project_uuid="project-a",
                description="desc",
                created_by="service",
            )
        )
        assert (created.name, created.description, created.created_by, created.is_active) == (
            "Boas-vindas ✓",
            "desc",
            "service",
            True,
        )
        assert flows.get_definition(created.id) == created
        assert_utc(created.created_at)
        assert created.updated_at == created.created_at
        assert json.loads(json.dumps(created.to_json()))["name"] == "Boas-vindas ✓"

    def test_list_definitions_newest_first_and_active_only(self, flows: Flows) -> None:
        first = flows.create_definition(NewFlow(name="first", project_uuid="project-a"))
        second = flows.create_definition(NewFlow(name="second", project_uuid="project-a"))
        flows.create_definition(NewFlow(name="elsewhere", project_uuid="project-b"))
        assert flows.update_definition(first.id, is_active=False) is not None
        assert [f.id for f in flows.list_definitions("project-a")] == [second.id, first.id]
        active = flows.list_definitions("project-a", active_only=True)
        assert [f.id for f in active] == [second.id]
        assert flows.list_definitions("nobody") == []

    def test_update_definition_changes_only_what_is_given(
        self, flows: Flows, flow: FlowDefinition
    ) -> None:
        renamed = flows.update_definition(flow.id, name="renamed")
        assert renamed is not None
        assert (renamed.name, renamed.description, renamed.is_active) == (
            "renamed",
            flow.description,
            True,
        )
        assert renamed.updated_at >= flow.updated_at and renamed.created_at == flow.created_at
        inactive = flows.update_definition(flow.id, description="d", is_active=False)
        assert (inactive.name, inactive.description, inactive.is_active) == ("renamed", "d", False)
        assert flows.update_definition(flow.id).is_active is False  # None keeps every field
        assert flows.get_definition(flow.id).description == "d"

    @pytest.mark.parametrize("bad_id", NOT_IDS)
    def test_unknown_ids_are_none_not_errors(
        self, flows: Flows, flow: FlowDefinition, draft: FlowVersion, bad_id: str, at: At
    ) -> None:
        assert flows.get_definition(bad_id) is None
        assert flows.update_definition(bad_id, name="x") is None
        assert flows.get_version(bad_id, 1) is None
        assert flows.get_version_by_id(bad_id) is None
        assert flows.list_versions(bad_id) == []
        assert flows.published_version(bad_id) is None
        assert flows.update_draft(bad_id, 1, steps=[]) is None
        assert flows.publish(bad_id, 1, allowed_from=[DRAFT]) is None
        assert flows.get_execution(bad_id) is None
        assert flows.list_executions(bad_id) == []
        assert flows.list_executions(flow.id, version_id=bad_id) == []
        assert flows.claim(bad_id, "w1", at(30), at(0)) is None
        assert flows.renew(bad_id, "w1", at(30)) is False
        assert flows.request_cancel(bad_id, at(0)) is None
        ghost = FlowExecution(id=bad_id, flow_definition_id=flow.id, flow_version_id=draft.id)
        assert flows.save(ghost, "w1", release=True) is None

    def test_unknown_version_numbers_are_none(self, flows: Flows, draft: FlowVersion) -> None:
        flow_id = draft.flow_definition_id
        assert flows.get_version(flow_id, 2) is None
        assert flows.update_draft(flow_id, 2, steps=[]) is None
        assert flows.publish(flow_id, 2, allowed_from=[DRAFT]) is None
        assert flows.published_version(flow_id) is None

    # -- versions -------------------------------------------------------------------------

    def test_versions_are_numbered_from_one_per_flow(
        self, flows: Flows, flow: FlowDefinition
    ) -> None:
        created = [flows.create_version(flow.id, [{"id": f"s{n}"}]) for n in range(3)]
        other = flows.create_definition(NewFlow(name="other", project_uuid="project-a"))
        assert flows.create_version(other.id, []).version_number == 1
        assert [v.version_number for v in created] == [1, 2, 3]
        assert flows.list_versions(flow.id) == created[::-1]
        assert flows.get_version(flow.id, 2) == created[1]
        assert flows.get_version_by_id(created[0].id) == created[0]
        assert {(v.status, v.published_at) for v in created} == {(DRAFT, None)}

    def test_version_round_trip(self, flows: Flows, flow: FlowDefinition) -> None:
        version = flows.create_version(
            flow.id, STEPS, change_notes="notas ✓", created_by="ana@example.org"
        )
        stored = flows.get_version(flow.id, 1)
        assert stored == version
        assert (stored.flow_definition_id, stored.change_notes, stored.created_by) == (
            flow.id,
            "notas ✓",
            "ana@example.org",
        )
        assert stored.steps == STEPS
        assert_utc(stored.created_at)
        assert json.loads(json.dumps(stored.to_json()))["steps"] == STEPS

    def test_a_version_of_an_unknown_flow_is_not_found(self, flows: Flows) -> None:
        for bad_id in ("00000000-0000-0000-0000-000000000000", "0" * 24, "nope"):
            with pytest.raises(NotFound):
                flows.create_version(bad_id, STEPS)

    def test_racing_version_creators_never_share_a_number(
        self, store: Store, flows: Flows, flow: FlowDefinition
    ) -> None:
        self.skip_unless_races()
        per_thread = 3

        def create(index: int) -> list[int]:
            steps = [{"id": f"t{index}"}]
            return [flows.create_version(flow.id, steps).version_number for _ in range(per_thread)]

        numbers = [n for created in race(RACERS, create, store) for n in created]
        assert sorted(numbers) == list(range(1, RACERS * per_thread + 1))
        assert len(flows.list_versions(flow.id)) == RACERS * per_thread

    def test_update_draft_changes_only_what_is_given(
        self, flows: Flows, draft: FlowVersion
    ) -> None:
        flow_id = draft.flow_definition_id
        stepped = flows.update_draft(flow_id, 1, steps=[{"id": "only"}])
        assert (stepped.steps, stepped.change_notes) == ([{"id": "only"}], "first")
        noted = flows.update_draft(flow_id, 1, change_notes="second")
        assert (noted.steps, noted.change_notes, noted.status) == (
            [{"id": "only"}],
            "second",
            DRAFT,
        )
        assert flows.update_draft(flow_id, 1) == noted
        assert flows.get_version(flow_id, 1) == noted
        assert (noted.id, noted.created_at) == (draft.id, draft.created_at)

    def test_only_a_draft_can_be_changed(self, flows: Flows, draft: FlowVersion) -> None:
        flow_id = draft.flow_definition_id
        flows.create_version(flow_id, [])
        flows.publish(flow_id, 1, allowed_from=[DRAFT])
        with pytest.raises(Conflict):
            flows.update_draft(flow_id, 1, steps=[{"id": "sneaky"}], change_notes="sneaky")
        with pytest.raises(Conflict):
            flows.update_draft(flow_id, 1)
        flows.publish(flow_id, 2, allowed_from=[DRAFT])
        assert flows.get_version(flow_id, 1).status is ARCHIVED
        with pytest.raises(Conflict):
            flows.update_draft(flow_id, 1, change_notes="sneaky")
        stored = flows.get_version(flow_id, 1)
        assert (stored.steps, stored.change_notes) == (STEPS, "first")

    def test_publish_archives_the_previously_published_version(
        self, flows: Flows, draft: FlowVersion
    ) -> None:
        flow_id = draft.flow_definition_id
        second = flows.create_version(flow_id, [{"id": "v2"}])
        before = whole_ms(utcnow())
        published = flows.publish(flow_id, 1, allowed_from=[DRAFT])
        assert (published.id, published.status, published.steps) == (draft.id, PUBLISHED, STEPS)
        assert published.published_at is not None and published.published_at >= before
        assert_utc(published.published_at)
        assert flows.published_version(flow_id) == published == flows.get_version(flow_id, 1)
        assert flows.get_version(flow_id, 2).status is DRAFT
        now_published = flows.publish(flow_id, 2, allowed_from=[DRAFT])
        assert now_published.id == second.id and now_published.status is PUBLISHED
        assert flows.published_version(flow_id) == now_published
        statuses = [(v.version_number, v.status) for v in flows.list_versions(flow_id)]
        assert statuses == [(2, PUBLISHED), (1, ARCHIVED)]

    def test_rollback_publishes_an_archived_version_again(
        self, flows: Flows, draft: FlowVersion
    ) -> None:
        flow_id = draft.flow_definition_id
        flows.create_version(flow_id, [{"id": "v2"}])
        first = flows.publish(flow_id, 1, allowed_from=[DRAFT])
        flows.publish(flow_id, 2, allowed_from=[DRAFT])
        again = flows.publish(flow_id, 1, allowed_from=[ARCHIVED])
        assert again.status is PUBLISHED and again.published_at >= first.published_at
        assert flows.published_version(flow_id).version_number == 1
        assert flows.get_version(flow_id, 2).status is ARCHIVED

    def test_publishing_from_a_status_not_allowed_is_a_conflict_and_changes_nothing(
        self, flows: Flows, draft: FlowVersion
    ) -> None:
        flow_id = draft.flow_definition_id
        with pytest.raises(Conflict):
            flows.publish(flow_id, 1, allowed_from=[ARCHIVED])
        assert flows.get_version(flow_id, 1) == draft
        flows.create_version(flow_id, [])
        flows.publish(flow_id, 1, allowed_from=[DRAFT])
        current = flows.publish(flow_id, 2, allowed_from=[DRAFT])
        with pytest.raises(Conflict):
            flows.publish(flow_id, 1, allowed_from=[DRAFT])
        with pytest.raises(Conflict):
            flows.publish(flow_id, 2, allowed_from=[])
        assert flows.published_version(flow_id) == current
        assert flows.get_version(flow_id, 1).status is ARCHIVED

    def test_at_most_one_published_version_per_flow(
        self, flows: Flows, flow: FlowDefinition
    ) -> None:
        other = flows.create_definition(NewFlow(name="other", project_uuid="project-a"))
        flows.create_version(other.id, [])
        kept = flows.publish(other.id, 1, allowed_from=[DRAFT])
        for _ in range(4):
            flows.create_version(flow.id, [])
        for number in (1, 3, 2, 4, 1):
            flows.publish(flow.id, number, allowed_from=list(VersionStatus))
            versions = flows.list_versions(flow.id)
            assert [v.version_number for v in versions if v.status is PUBLISHED] == [number]
            assert flows.published_version(flow.id).version_number == number
        assert flows.published_version(other.id) == kept  # other flows are not touched

    def test_racing_publishers_leave_exactly_one_published_version(
        self, store: Store, flows: Flows, flow: FlowDefinition
    ) -> None:
        self.skip_unless_races()
        for _ in range(RACERS):
            flows.create_version(flow.id, [])

        def publish(index: int) -> FlowVersion | None:
            return flows.publish(flow.id, index + 1, allowed_from=[DRAFT])

        assert all(version is not None for version in race(RACERS, publish, store))
        statuses = [v.status for v in flows.list_versions(flow.id)]
        assert statuses.count(PUBLISHED) == 1 and statuses.count(ARCHIVED) == RACERS - 1
        assert flows.published_version(flow.id).status is PUBLISHED

    # -- executions -----------------------------------------------------------------------

    def test_execution_round_trip(
        self, flows: Flows, draft: FlowVersion, new_execution: ExecutionFactory
    ) -> None:
        variables = {"nome": "João ✓", "tags": ["a", "b"], "score": 9.5}
        context = {"lead_id": "42", "variables": variables}
        created = new_execution(lead_id="42", context=context, executed_by="ana@example.org")
        assert (created.flow_definition_id, created.flow_version_id) == (
            draft.flow_definition_id,
            draft.id,
        )
        assert (created.status, created.next_step, created.revision) == (PENDING, 0, 0)
        assert (created.lead_id, created.context, created.executed_by) == (
            "42",
            context,
            "ana@example.org",
        )
        assert (created.logs, created.result, created.error_message) == ([], {}, "")
        assert created.resume_at == created.created_at  # due at once
        assert (created.lease_owner, created.lease_expires_at) == (None, None)
        assert created.cancel_requested is False
        assert (created.started_at, created.finished_at) == (None, None)
        assert flows.get_execution(created.id) == created
        assert_utc(created.created_at)

    def test_an_execution_needs_a_version_of_its_flow(
        self, flows: Flows, flow: FlowDefinition, draft: FlowVersion
    ) -> None:
        other = flows.create_definition(NewFlow(name="other", project_uuid="project-a"))
        foreign = flows.create_version(other.id, [])
        mismatches = [
            (flow.id, foreign.id),
            (other.id, draft.id),
            (flow.id, "nope"),
            ("nope", draft.id),
            (flow.id, flow.id),
        ]
        for flow_id, version_id in mismatches:
            new = NewExecution(flow_definition_id=flow_id, flow_version_id=version_id)
            with pytest.raises(NotFound):
                flows.create_execution(new)
        assert flows.list_executions(flow.id) == [] and flows.list_executions(other.id) == []

    def test_list_executions_newest_first_and_filtered(
        self, flows: Flows, draft: FlowVersion, new_execution: ExecutionFactory, at: At
    ) -> None:
        flow_id = draft.flow_definition_id
        second = flows.create_version(flow_id, [])
        first = new_execution(lead_id="1")
        middle = new_execution(second, lead_id="2")
        last = new_execution(lead_id="1")
        other_flow = flows.create_definition(NewFlow(name="other", project_uuid="project-a"))
        new_execution(flows.create_version(other_flow.id, []), lead_id="1")
        claimed = flows.claim(middle.id, "w1", at(60), at(0))
        finished = dataclasses.replace(claimed, status=COMPLETED, finished_at=at(1))
        assert flows.save(finished, "w1", release=True) is not None

        def ids(**filters: Any) -> list[str]:
            return [e.id for e in flows.list_executions(flow_id, **filters)]

        assert ids() == [last.id, middle.id, first.id]
        assert ids(status=COMPLETED) == [middle.id]
        assert ids(status=PENDING, lead_id="1") == [last.id, first.id]
        assert ids(lead_id="2") == [middle.id]
        assert ids(version_id=second.id) == [middle.id]
        assert ids(version_id=draft.id, lead_id="2") == []
        assert ids(limit=2) == [last.id, middle.id]
        assert ids(status=FAILED) == []

    # -- leases ---------------------------------------------------------------------------

    def test_a_claim_holds_until_the_lease_expires(
        self, flows: Flows, new_execution: ExecutionFactory, at: At
    ) -> None:
        execution = new_execution()
        claimed = flows.claim(execution.id, "w1", at(30), at(0))
        assert claimed is not None
        assert (claimed.lease_owner, claimed.lease_expires_at, claimed.revision) == (
            "w1",
            at(30),
            1,
        )
        assert flows.get_execution(execution.id) == claimed
        assert flows.claim(execution.id, "w2", at(60), at(10)) is None
        assert flows.claim(execution.id, "w1", at(60), at(10)) is None  # not re-entrant
        taken = flows.claim(execution.id, "w2", at(90), at(31))
        assert taken is not None
        assert (taken.lease_owner, taken.lease_expires_at, taken.revision) == ("w2", at(90), 2)

    def test_finished_executions_cannot_be_claimed(
        self, flows: Flows, new_execution: ExecutionFactory, at: At
    ) -> None:
        execution = new_execution()
        claimed = flows.claim(execution.id, "w1", at(30), at(0))
        failed = dataclasses.replace(
            claimed, status=FAILED, error_message="boom", finished_at=at(1)
        )
        assert flows.save(failed, "w1", release=True).status is FAILED
        assert flows.claim(execution.id, "w2", at(90), at(60)) is None
        assert flows.get_execution(execution.id).revision == 1

    def test_racing_claims_have_exactly_one_winner(
        self, store: Store, flows: Flows, new_execution: ExecutionFactory, at: At
    ) -> None:
        self.skip_unless_races()
        execution = new_execution()

        def claim(index: int) -> FlowExecution | None:
            return flows.claim(execution.id, f"w{index}", at(60), at(0))

        winners = [claimed for claimed in race(RACERS, claim, store) if claimed is not None]
        assert len(winners) == 1
        stored = flows.get_execution(execution.id)
        assert (stored.lease_owner, stored.revision) == (winners[0].lease_owner, 1)

    def test_only_the_holder_renews(
        self, flows: Flows, new_execution: ExecutionFactory, at: At
    ) -> None:
        execution = new_execution()
        flows.claim(execution.id, "w1", at(30), at(0))
        assert flows.renew(execution.id, "w2", at(600)) is False
        assert flows.get_execution(execution.id).lease_expires_at == at(30)
        assert flows.renew(execution.id, "w1", at(60)) is True
        assert flows.get_execution(execution.id).lease_expires_at == at(60)
        assert flows.claim(execution.id, "w2", at(120), at(45)) is None
        assert flows.claim(execution.id, "w2", at(120), at(61)) is not None
        assert flows.renew(execution.id, "w1", at(600)) is False
        assert flows.get_execution(execution.id).lease_expires_at == at(120)

    def test_the_holder_saves_the_state(
        self, flows: Flows, new_execution: ExecutionFactory, at: At
    ) -> None:
        execution = new_execution(lead_id="7")
        claimed = flows.claim(execution.id, "w1", at(30), at(0))
        logs = [
            {
                "step_id": "call",
                "status": "completed",
                "duration_ms": 12,
                "logs": [{"level": "info", "message": "olá ✓"}],
                "started_at": "2024-01-01T00:00:00Z",
            }
        ]
        result = {"call": {"status": 200, "body": {"ok": True, "items": [1, "dois"]}}}
        waiting = dataclasses.replace(
            claimed,
            status=RUNNING,
            started_at=at(0),
            logs=logs,
            result=result,
            next_step=1,
            resume_at=at(3600),
            lead_id="ignored",
            context={"ignored": True},
            lease_owner="ignored",
        )
        saved = flows.save(waiting, "w1", release=False)
        assert saved is not None
        assert (saved.status, saved.started_at, saved.next_step) == (RUNNING, at(0), 1)
        assert (saved.logs, saved.result, saved.resume_at) == (logs, result, at(3600))
        # not the worker's to change
        assert (saved.lead_id, saved.context, saved.revision) == ("7", {}, 1)
        assert (saved.lease_owner, saved.lease_expires_at) == ("w1", at(30))
        assert flows.get_execution(execution.id) == saved
        released = flows.save(saved, "w1", release=True)
        assert (released.lease_owner, released.lease_expires_at) == (None, None)
        assert flows.get_execution(execution.id) == released
        assert flows.save(released, "w1", release=True) is None  # no longer the holder

    def test_a_non_holder_saves_nothing(
        self, flows: Flows, new_execution: ExecutionFactory, at: At
    ) -> None:
        execution = new_execution()
        claimed = flows.claim(execution.id, "w1", at(30), at(0))
        stale = dataclasses.replace(claimed, status=FAILED, error_message="stale", next_step=5)
        assert flows.save(stale, "w2", release=True) is None
        assert flows.get_execution(execution.id) == claimed
        taken = flows.claim(execution.id, "w2", at(90), at(31))
        assert flows.save(stale, "w1", release=True) is None  # w1's lease expired, w2 took it
        assert flows.get_execution(execution.id) == taken
        moved_on = flows.save(dataclasses.replace(taken, next_step=1), "w2", release=False)
        assert moved_on.next_step == 1

    def test_an_expired_lease_nobody_took_still_fences_by_owner(
        self, flows: Flows, new_execution: ExecutionFactory, at: At
    ) -> None:
        """Fencing is by owner: past its expiry, the holder's writes count until another claims."""
        execution = new_execution()
        claimed = flows.claim(execution.id, "w1", at(-60), at(-90))
        assert claimed is not None  # its lease is over already
        saved = flows.save(dataclasses.replace(claimed, next_step=2), "w1", release=False)
        assert saved is not None and saved.next_step == 2
        assert flows.renew(execution.id, "w1", at(30)) is True

    def test_a_new_claim_by_the_same_owner_fences_out_the_old_one(
        self, flows: Flows, new_execution: ExecutionFactory, at: At
    ) -> None:
        """Two threads of one worker share its owner name: the revision tells their claims apart."""
        execution = new_execution()
        first = flows.claim(execution.id, "worker", at(30), at(0))
        second = flows.claim(execution.id, "worker", at(90), at(31))
        assert (first.revision, second.revision) == (1, 2)
        assert flows.save(dataclasses.replace(first, next_step=7), "worker", release=True) is None
        assert flows.get_execution(execution.id) == second
        saved = flows.save(dataclasses.replace(second, next_step=1), "worker", release=False)
        assert saved is not None and saved.next_step == 1

    def test_a_save_keeps_a_requested_cancellation(
        self, flows: Flows, new_execution: ExecutionFactory, at: At
    ) -> None:
        execution = new_execution()
        claimed = flows.claim(execution.id, "w1", at(30), at(0))
        requested = flows.request_cancel(execution.id, at(1))
        assert requested.cancel_requested is True
        assert (requested.status, requested.finished_at, requested.lease_owner) == (
            PENDING,
            None,
            "w1",
        )
        running = dataclasses.replace(claimed, status=RUNNING)
        saved = flows.save(running, "w1", release=False)
        assert saved.cancel_requested is True and saved.status is RUNNING
        assert flows.get_execution(execution.id).cancel_requested is True

    # -- cancellation ---------------------------------------------------------------------

    def test_cancelling_an_unheld_execution_cancels_it_at_once(
        self, flows: Flows, new_execution: ExecutionFactory, at: At
    ) -> None:
        execution = new_execution()
        cancelled = flows.request_cancel(execution.id, at(0))
        assert (cancelled.status, cancelled.finished_at) == (CANCELLED, at(0))
        assert flows.get_execution(execution.id) == cancelled
        assert flows.claim(execution.id, "w1", at(30), at(0)) is None
        assert flows.due_executions(at(86400), at(0), 10) == []

    def test_cancelling_after_the_lease_expired_cancels_and_fences_the_old_holder(
        self, flows: Flows, new_execution: ExecutionFactory, at: At
    ) -> None:
        execution = new_execution()
        claimed = flows.claim(execution.id, "w1", at(10), at(0))
        cancelled = flows.request_cancel(execution.id, at(20))
        assert (cancelled.status, cancelled.finished_at) == (CANCELLED, at(20))
        assert (cancelled.lease_owner, cancelled.lease_expires_at) == (None, None)
        completed = dataclasses.replace(claimed, status=COMPLETED, finished_at=at(21))
        assert flows.save(completed, "w1", release=True) is None
        assert flows.renew(execution.id, "w1", at(60)) is False
        assert flows.get_execution(execution.id).status is CANCELLED

    def test_cancelling_a_finished_execution_changes_nothing(
        self, flows: Flows, new_execution: ExecutionFactory, at: At
    ) -> None:
        execution = new_execution()
        claimed = flows.claim(execution.id, "w1", at(30), at(0))
        done = dataclasses.replace(claimed, status=COMPLETED, finished_at=at(1), result={"ok": 1})
        stored = flows.save(done, "w1", release=True)
        assert flows.request_cancel(execution.id, at(5)) == stored
        assert flows.get_execution(execution.id) == stored
        cancelled = flows.request_cancel(new_execution().id, at(0))
        assert flows.request_cancel(cancelled.id, at(5)) == cancelled

    # -- due executions -------------------------------------------------------------------

    def test_due_executions(self, flows: Flows, new_execution: ExecutionFactory) -> None:
        due, held, waiting, finished, overdue = (new_execution() for _ in range(5))
        start = whole_ms(utcnow()) + timedelta(milliseconds=1)  # after every created_at

        def at(seconds: float) -> datetime:
            return start + timedelta(seconds=seconds)

        def park(execution: FlowExecution, **state: Any) -> None:
            claimed = flows.claim(execution.id, "parker", at(5), at(0))
            parked = dataclasses.replace(claimed, **state)
            assert flows.save(parked, "parker", release=True) is not None

        park(waiting, status=RUNNING, resume_at=at(3600))
        park(finished, status=COMPLETED, finished_at=at(0))
        park(overdue, status=RUNNING, resume_at=at(-60))
        assert flows.claim(held.id, "w1", at(30), at(0)) is not None

        assert flows.due_executions(at(0), at(0), 10) == [overdue.id, due.id]
        assert flows.due_executions(at(0), at(0), 1) == [overdue.id]
        assert flows.due_executions(at(0), at(0), 0) == []
        assert flows.due_executions(at(-61), at(0), 10) == []
        # held's lease is over at 31: due again
        assert flows.due_executions(at(0), at(31), 10) == [overdue.id, due.id, held.id]
        everything = [overdue.id, due.id, held.id, waiting.id]
        assert flows.due_executions(at(3600), at(31), 10) == everything

    # -- JSON -----------------------------------------------------------------------------

    def test_json_values_round_trip(self, flows: Flows, flow: FlowDefinition, at: At) -> None:
        steps = [*STEPS, {"id": "vazio", "config": {}, "x": [[], [{}], [[None]]]}]
        version = flows.create_version(flow.id, steps)
        variables = {"emoji": "🎉", "zero": 0, "neg": -1.5, "flag": False, "none": None}
        context = {"lead_id": "x", "variables": variables}
        execution = flows.create_execution(
            NewExecution(flow_definition_id=flow.id, flow_version_id=version.id, context=context)
        )
        claimed = flows.claim(execution.id, "w1", at(30), at(0))
        logs = [{"step_id": "call", "lines": ["ação ✓", "日本語"], "extra": {"n": 1, "b": True}}]
        result = {"call": {"body": {"deep": [1, "two", None, {"three": 3.25}]}, "text": "😀"}}
        flows.save(dataclasses.replace(claimed, logs=logs, result=result), "w1", release=True)
        stored_version = flows.get_version_by_id(version.id)
        stored = flows.get_execution(execution.id)
        assert stored_version.steps == steps
        assert (stored.context, stored.logs, stored.result) == (context, logs, result)
        stored_variables = stored.context["variables"]
        types = [type(stored_variables[key]) for key in ("zero", "neg", "flag")]
        assert types == [int, float, bool]
        extra = stored.logs[0]["extra"]
        assert (type(extra["n"]), type(extra["b"])) == (int, bool)
        assert json.loads(json.dumps(stored.to_json()))["result"] == result
