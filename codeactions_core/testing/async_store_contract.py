"""The contract every Store's ``async_runs`` repository must pass (issue 15).

Subclass :class:`AsyncRunStoreContract` with a ``store`` fixture yielding a migrated
store, as for :class:`~codeactions_core.testing.store_contract.StoreContract`.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from codeactions_core.async_store import AsyncRun, CallbackState
from codeactions_core.model import CodeType, NewCode, RunStatus, utcnow
from codeactions_core.store import NewRun, Store


def stored_run(store: Store, project: str = "project-async") -> str:
    code = store.codes.create(
        NewCode(
            name="async",
            type=CodeType.ENDPOINT,
            source="def Run(engine):\n    pass\n",
            language="python",
            project_uuid=project,
            timeout=10,
        )
    )
    return store.runs.create(NewRun(code_id=code.id, status=RunStatus.QUEUED)).id


class AsyncRunStoreContract:
    @pytest.fixture
    def store(self) -> Store:  # pragma: no cover - always overridden
        raise NotImplementedError("provide a `store` fixture yielding a migrated store")

    def test_record_round_trip(self, store: Store) -> None:
        run_id = stored_run(store)
        created = store.async_runs.create(
            AsyncRun(
                run_id=run_id,
                project_uuid="project-async",
                callback_url="https://example.com/hook",
                callback_state=CallbackState.PENDING,
            )
        )
        found = store.async_runs.get(run_id)
        assert found == created
        assert (found.attempts, found.redelivered, found.callback_state) == (0, False, "pending")
        assert found.to_json()["callback"] == {"state": "pending", "attempts": 0, "error": None}

    @pytest.mark.parametrize(
        "bad_id", ["", "nope", "5e6273b3-d4a5-428e-a1a3-7dad7808acfb", "6502b4f2a1c3e4d5f6a7b8c9"]
    )
    def test_unknown_ids_are_none(self, store: Store, bad_id: str) -> None:
        assert store.async_runs.get(bad_id) is None
        assert store.async_runs.claim(bad_id, "w", redelivered=False, max_attempts=2) is None
        assert store.async_runs.set_callback(bad_id, CallbackState.FAILED, 1, "x") is None

    def test_claims_count_attempts_up_to_the_cap(self, store: Store) -> None:
        run_id = stored_run(store)
        store.async_runs.create(AsyncRun(run_id=run_id, project_uuid="project-async"))
        first = store.async_runs.claim(run_id, "host:1", redelivered=False, max_attempts=2)
        assert (first.attempts, first.redelivered, first.worker) == (1, False, "host:1")
        second = store.async_runs.claim(run_id, "host:2", redelivered=True, max_attempts=2)
        assert (second.attempts, second.redelivered, second.worker) == (2, True, "host:2")
        third = store.async_runs.claim(run_id, "host:3", redelivered=True, max_attempts=2)
        assert (third.attempts, third.worker) == (2, "host:2"), "the cap keeps the last claim"

    def test_redelivered_stays_true(self, store: Store) -> None:
        run_id = stored_run(store)
        store.async_runs.create(AsyncRun(run_id=run_id, project_uuid="project-async"))
        store.async_runs.claim(run_id, "a", redelivered=True, max_attempts=5)
        later = store.async_runs.claim(run_id, "b", redelivered=False, max_attempts=5)
        assert (later.attempts, later.redelivered) == (2, True)

    def test_callback_outcome(self, store: Store) -> None:
        run_id = stored_run(store)
        store.async_runs.create(AsyncRun(run_id=run_id, project_uuid="project-async"))
        done = store.async_runs.set_callback(run_id, CallbackState.FAILED, 3, "HTTP 500")
        assert (done.callback_state, done.callback_attempts, done.callback_error) == (
            "failed",
            3,
            "HTTP 500",
        )
        assert store.async_runs.get(run_id) == done

    def test_signing_keys_rotate(self, store: Store) -> None:
        project = f"project-{uuid.uuid4().hex[:8]}"
        assert store.async_runs.signing_key(project) is None
        first = store.async_runs.rotate_signing_key(project, "k1")
        assert (first.project_uuid, first.key) == (project, "k1")
        assert store.async_runs.signing_key(project).key == "k1"
        store.async_runs.rotate_signing_key(project, "k2")
        assert store.async_runs.signing_key(project).key == "k2"
        assert store.async_runs.signing_key("other-" + project) is None

    def test_the_abandoned_run_sweep_leaves_runs_queued_in_the_broker_alone(
        self, store: Store
    ) -> None:
        """A backlog waiting in RabbitMQ for workers is not abandoned, however old; a run a
        server's own pool held, or one a worker started, is."""
        in_broker, in_server, started = stored_run(store), stored_run(store), stored_run(store)
        store.async_runs.create(AsyncRun(run_id=in_broker, project_uuid="p", via="broker"))
        store.async_runs.create(AsyncRun(run_id=in_server, project_uuid="p", via="server"))
        store.async_runs.create(AsyncRun(run_id=started, project_uuid="p", via="broker"))
        store.runs.update(started, status=RunStatus.STARTED)
        assert store.async_runs.get(in_broker).via == "broker"
        store.runs.fail_abandoned(utcnow() + timedelta(seconds=5), "lost")
        assert store.runs.get(in_broker).status is RunStatus.QUEUED
        assert (store.runs.get(in_server).status, store.runs.get(in_server).result) == (
            RunStatus.FAILED,
            "lost",
        )
        assert store.runs.get(started).status is RunStatus.FAILED
