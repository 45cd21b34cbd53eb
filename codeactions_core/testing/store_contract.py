"""The contract every Store must pass.

Subclass :class:`StoreContract` in a test module as ``TestMyStore`` and
provide a ``store`` fixture yielding a migrated, empty store::

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self):
            yield make_my_store()

It includes :class:`~codeactions_core.testing.log_store_contract.LogStoreContract`
against ``store.logs``, with runs created in the store.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from codeactions_core.model import (
    Authorization,
    CodeChanges,
    CodeRun,
    CodeType,
    Role,
    RunStatus,
    utcnow,
)
from codeactions_core.store import LogStore, NewRun, Store
from codeactions_core.testing.log_store_contract import NOT_IDS, LogStoreContract, NewRunFactory
from codeactions_core.testing.records import assert_utc, new_code
from codeactions_core.testing.schedule_store_contract import ScheduleStoreContract
from codeactions_core.testing.version_store_contract import VersionStoreContract


class StoreContract(LogStoreContract, VersionStoreContract, ScheduleStoreContract):
    @pytest.fixture
    def store(self) -> Store:  # pragma: no cover - always overridden
        raise NotImplementedError("provide a `store` fixture yielding a migrated, empty store")

    @pytest.fixture
    def log_store(self, store: Store) -> LogStore:
        return store.logs

    @pytest.fixture
    def new_run(self, store: Store) -> NewRunFactory:
        """Runs created in the store (of a new code unless one is named)."""

        def create(code_id: str | None = None) -> CodeRun:
            return store.runs.create(NewRun(code_id=code_id or store.codes.create(new_code()).id))

        return create

    # -- schema -------------------------------------------------------------------------

    def test_is_a_store_and_up_to_date(self, store: Store) -> None:
        assert isinstance(store, Store)
        status = store.schema_status()
        assert not status.behind and not status.dirty
        assert store.migrate() == []
        store.ping()
        store.release()

    # -- codes --------------------------------------------------------------------------

    def test_code_round_trip(self, store: Store) -> None:
        created = store.codes.create(new_code(url="https://example.org/hook", timeout=30))
        fetched = store.codes.get(created.id)
        assert fetched == created
        assert fetched.source.endswith("('olá ✓')\n")
        assert (fetched.timeout, fetched.url, fetched.type) == (
            30,
            "https://example.org/hook",
            CodeType.ENDPOINT,
        )
        assert_utc(fetched.created_at)
        assert fetched.to_json()["created_at"].endswith("Z")

    @pytest.mark.parametrize("bad_id", NOT_IDS)
    def test_unknown_ids_are_none_not_errors(self, store: Store, bad_id: str) -> None:
        assert store.codes.get(bad_id) is None
        assert store.codes.update(bad_id, CodeChanges(name="x")) is None
        assert store.codes.delete(bad_id) is False
        assert store.runs.get(bad_id) is None
        assert store.runs.update(bad_id, status=RunStatus.FAILED) is None
        assert store.runs.list_by_code(bad_id) == []

    def test_list_codes_by_project_newest_first_and_by_type(self, store: Store) -> None:
        first = store.codes.create(new_code(name="first", type=CodeType.FLOW))
        second = store.codes.create(new_code(name="second"))
        store.codes.create(new_code(name="elsewhere", project_uuid="project-b"))
        assert [c.id for c in store.codes.list_by_project("project-a")] == [second.id, first.id]
        assert [c.id for c in store.codes.list_by_project("project-a", CodeType.FLOW)] == [first.id]
        assert store.codes.list_by_project("nobody") == []

    def test_sources_of_a_language_across_projects(self, store: Store) -> None:
        """``codeactions libs sync`` reads every stored code of a language."""
        first = store.codes.create(new_code(source="import six\n", project_uuid="project-s1"))
        store.codes.create(new_code(source="import yaml\n", project_uuid="project-s2"))
        store.codes.create(
            new_code(source="package main", language="go", project_uuid="project-s1")
        )
        sources = list(store.codes.sources("python"))
        assert {"import six\n", "import yaml\n"} <= set(sources)
        assert "package main" not in sources
        store.codes.delete(first.id)
        assert "import six\n" not in set(store.codes.sources("python"))

    def test_update_changes_only_what_is_given(self, store: Store) -> None:
        code = store.codes.create(new_code())
        updated = store.codes.update(code.id, CodeChanges(name="renamed", timeout=120))
        assert updated is not None
        assert (updated.name, updated.timeout, updated.source) == ("renamed", 120, code.source)
        assert updated.updated_at >= code.updated_at
        assert store.codes.get(code.id) == updated

    def test_delete_code(self, store: Store) -> None:
        code = store.codes.create(new_code())
        assert store.codes.delete(code.id) is True
        assert store.codes.get(code.id) is None
        assert store.codes.delete(code.id) is False

    def test_plugin_languages_are_storable(self, store: Store) -> None:
        code = store.codes.create(new_code(language="lua"))
        assert store.codes.get(code.id).language == "lua"

    # -- runs ---------------------------------------------------------------------------

    def test_run_life_cycle(self, store: Store) -> None:
        code = store.codes.create(new_code())
        run = store.runs.create(
            NewRun(code_id=code.id, params={"name": "ana"}, body="raw", headers={"X-A": ["1", "2"]})
        )
        assert run.status is RunStatus.QUEUED
        assert store.runs.get(run.id) == run
        done = store.runs.update(
            run.id,
            status=RunStatus.COMPLETED,
            result='{"ok": true}',
            extra={"status_code": 201, "content_type": "json"},
        )
        assert done is not None
        assert (done.status, done.result, done.extra["status_code"]) == (
            RunStatus.COMPLETED,
            '{"ok": true}',
            201,
        )
        assert (done.params, done.body, done.headers) == (
            {"name": "ana"},
            "raw",
            {"X-A": ["1", "2"]},
        )
        kept = store.runs.update(run.id, status=RunStatus.FAILED)
        assert (kept.result, kept.extra) == (done.result, done.extra)

    def test_a_run_recorded_already_finished(self, store: Store) -> None:
        code = store.codes.create(new_code())
        run = store.runs.create(
            NewRun(code_id=code.id, status=RunStatus.FAILED, result="rejected: busy")
        )
        assert (store.runs.get(run.id).status, store.runs.get(run.id).result) == (
            RunStatus.FAILED,
            "rejected: busy",
        )

    def test_list_runs_filters_by_created_at(self, store: Store) -> None:
        code = store.codes.create(new_code())
        other = store.codes.create(new_code())
        before_all = utcnow() - timedelta(seconds=1)
        runs = [store.runs.create(NewRun(code_id=code.id)) for _ in range(3)]
        store.runs.create(NewRun(code_id=other.id))
        listed = store.runs.list_by_code(code.id)
        assert {r.id for r in listed} == {r.id for r in runs}
        assert [r.created_at for r in listed] == sorted(
            (r.created_at for r in listed), reverse=True
        )
        assert store.runs.list_by_code(code.id, after=before_all, limit=2) == listed[:2]
        assert store.runs.list_by_code(code.id, before=before_all) == []
        oldest, newest = listed[-1], listed[0]
        # both bounds are inclusive, as the old service's were
        assert oldest.id in {
            r.id for r in store.runs.list_by_code(code.id, after=oldest.created_at)
        }
        assert newest.id in {
            r.id for r in store.runs.list_by_code(code.id, before=newest.created_at)
        }
        later = store.runs.list_by_code(code.id, after=newest.created_at)
        assert {r.created_at for r in later} == {newest.created_at}
        assert store.runs.list_by_code(code.id, after=utcnow() + timedelta(seconds=5)) == []

    def test_abandoned_runs_are_failed(self, store: Store) -> None:
        code = store.codes.create(new_code())
        queued = store.runs.create(NewRun(code_id=code.id))
        started = store.runs.create(NewRun(code_id=code.id, status=RunStatus.STARTED))
        done = store.runs.create(NewRun(code_id=code.id))
        store.runs.update(done.id, status=RunStatus.COMPLETED, result="ok")
        assert store.runs.fail_abandoned(utcnow() - timedelta(minutes=5), "lost") == 0
        assert store.runs.fail_abandoned(utcnow() + timedelta(seconds=5), "lost") == 2
        for run in (queued, started):
            assert (store.runs.get(run.id).status, store.runs.get(run.id).result) == (
                RunStatus.FAILED,
                "lost",
            )
        assert store.runs.get(done.id).status is RunStatus.COMPLETED

    def test_runs_of_an_owner_whose_lease_expired_are_failed(self, store: Store) -> None:
        code = store.codes.create(new_code())
        soon = utcnow() + timedelta(seconds=30)
        mine = [
            store.runs.create(
                NewRun(code_id=code.id, status=status, owner="a:1", lease_expires_at=soon)
            )
            for status in (RunStatus.QUEUED, RunStatus.STARTED)
        ]
        done = store.runs.create(
            NewRun(code_id=code.id, status=RunStatus.STARTED, owner="a:1", lease_expires_at=soon)
        )
        store.runs.update(done.id, status=RunStatus.COMPLETED, result="ok")
        other = store.runs.create(
            NewRun(code_id=code.id, status=RunStatus.STARTED, owner="b:2", lease_expires_at=soon)
        )
        unowned = store.runs.create(NewRun(code_id=code.id))  # e.g. waiting for a worker
        assert store.runs.fail_expired_leases(utcnow(), "dead") == 0
        later = soon + timedelta(seconds=60)
        assert store.runs.renew_leases("a:1", later) == 2  # only its unfinished runs
        assert store.runs.fail_expired_leases(soon + timedelta(seconds=1), "dead") == 1
        assert (store.runs.get(other.id).status, store.runs.get(other.id).result) == (
            RunStatus.FAILED,
            "dead",
        )
        assert {store.runs.get(run.id).status for run in mine} == {
            RunStatus.QUEUED,
            RunStatus.STARTED,
        }
        assert store.runs.fail_expired_leases(later + timedelta(days=1), "dead") == 2
        assert store.runs.get(unowned.id).status is RunStatus.QUEUED  # no owner: no lease rule
        assert store.runs.get(done.id).status is RunStatus.COMPLETED

    def test_a_lost_run_is_restored_with_its_id(self, store: Store) -> None:
        code = store.codes.create(new_code())
        kept = store.runs.create(NewRun(code_id=code.id))
        lost = CodeRun(
            id=kept.id,
            code_id=code.id,
            status=RunStatus.COMPLETED,
            result="r",
            extra={"status_code": 200},
            params={"a": "1"},
            body="b",
            headers={"X": ["y"]},
        )
        assert store.runs.restore(lost) is False  # exists: left as it is
        assert store.runs.get(kept.id).status is RunStatus.QUEUED
        store.runs.delete_older_than(utcnow() + timedelta(seconds=5), 10)
        assert store.runs.restore(lost) is True
        restored = store.runs.get(kept.id)
        assert (
            restored.status,
            restored.result,
            restored.extra,
            restored.params,
            restored.body,
            restored.headers,
        ) == (RunStatus.COMPLETED, "r", {"status_code": 200}, {"a": "1"}, "b", {"X": ["y"]})

    def test_runs_of_an_owner_are_failed_by_name_or_prefix(self, store: Store) -> None:
        code = store.codes.create(new_code())
        far = utcnow() + timedelta(hours=1)
        runs = {
            owner: store.runs.create(
                NewRun(code_id=code.id, status=RunStatus.STARTED, owner=owner, lease_expires_at=far)
            )
            for owner in ("i1:h:1", "i1:h:2", "i10:h:1", "I1:h:3")
        }
        assert store.runs.fail_owned("i1:h:2", "bye") == 1
        assert store.runs.fail_owned("i1:", "restarted", prefix=True) == 1  # exact, case and all
        assert store.runs.get(runs["i1:h:1"].id).result == "restarted"
        assert store.runs.get(runs["i1:h:2"].id).result == "bye"
        assert {store.runs.get(runs[o].id).status for o in ("i10:h:1", "I1:h:3")} == {
            RunStatus.STARTED
        }
        assert store.runs.fail_owned("i1:", "again", prefix=True) == 0

    def test_delete_old_runs_in_batches(self, store: Store) -> None:
        code = store.codes.create(new_code())
        for _ in range(5):
            store.runs.create(NewRun(code_id=code.id))
        assert store.runs.delete_older_than(utcnow() - timedelta(days=1), 10) == 0
        future = utcnow() + timedelta(seconds=5)
        assert [store.runs.delete_older_than(future, 2) for _ in range(4)] == [2, 2, 1, 0]

    # -- projects, permissions, libraries -----------------------------------------------

    def test_project_upsert(self, store: Store) -> None:
        assert store.projects.get("p-1") is None
        created = store.projects.upsert("p-1", "One", [Authorization("a@x.org", Role.MODERATOR)])
        assert (created.uuid, created.name) == ("p-1", "One")
        assert created.authorizations == [Authorization("a@x.org", Role.MODERATOR)]
        updated = store.projects.upsert("p-1", "Uno", [])
        assert (updated.id, updated.name, updated.authorizations) == (created.id, "Uno", [])

    def test_permissions(self, store: Store) -> None:
        assert store.permissions.get("p-1", "a@x.org") is None
        store.permissions.upsert("p-1", "a@x.org", Role.VIEWER)
        store.permissions.upsert("p-1", "b@x.org", Role.CONTRIBUTOR)
        store.permissions.upsert("p-2", "a@x.org", Role.MODERATOR)
        again = store.permissions.upsert("p-1", "a@x.org", Role.MODERATOR)
        assert again.role is Role.MODERATOR
        assert store.permissions.get("p-1", "a@x.org").role is Role.MODERATOR
        assert [p.email for p in store.permissions.list_by_project("p-1")] == ["a@x.org", "b@x.org"]
        assert store.permissions.delete("p-1", "a@x.org") is True
        assert store.permissions.delete("p-1", "a@x.org") is False
        assert store.permissions.get("p-1", "a@x.org") is None
        assert store.permissions.get("p-2", "a@x.org").role is Role.MODERATOR

    def test_libraries_are_recorded_once(self, store: Store) -> None:
        first = store.libs.add("requests", "python")
        again = store.libs.add("requests", "python")
        store.libs.add("arrow", "python")
        assert first.id == again.id
        assert [lib.name for lib in store.libs.list("python")] == ["arrow", "requests"]

    # -- project secrets (issue 15) -----------------------------------------------------

    def test_secrets_put_list_replace_delete(self, store: Store) -> None:
        assert store.secrets.list_by_project("p-1") == []
        first = store.secrets.put("p-1", "TOKEN", "cipher-1")
        store.secrets.put("p-1", "API_KEY", "cipher-2")
        store.secrets.put("p-2", "TOKEN", "cipher-3")
        assert_utc(first.created_at)
        assert (first.project_uuid, first.name, first.ciphertext) == ("p-1", "TOKEN", "cipher-1")
        replaced = store.secrets.put("p-1", "TOKEN", "cipher-4")
        assert replaced.ciphertext == "cipher-4"
        assert replaced.created_at == first.created_at and replaced.updated_at >= first.updated_at
        listed = store.secrets.list_by_project("p-1")
        expected = [("API_KEY", "cipher-2"), ("TOKEN", "cipher-4")]
        assert [(s.name, s.ciphertext) for s in listed] == expected
        assert store.secrets.delete("p-1", "TOKEN") is True
        assert store.secrets.delete("p-1", "TOKEN") is False
        assert [s.name for s in store.secrets.list_by_project("p-1")] == ["API_KEY"]
        assert [s.ciphertext for s in store.secrets.list_by_project("p-2")] == ["cipher-3"]

    def test_secrets_rotation_swaps_only_an_unchanged_value(self, store: Store) -> None:
        store.secrets.put("p-1", "A", "old-a")
        store.secrets.put("p-2", "B", "old-b")
        stored = sorted((s.project_uuid, s.name) for s in store.secrets.all())
        assert stored == [("p-1", "A"), ("p-2", "B")]
        assert store.secrets.replace_ciphertext("p-1", "A", "old-a", "new-a") is True
        assert store.secrets.replace_ciphertext("p-2", "B", "stale", "new-b") is False
        assert store.secrets.replace_ciphertext("p-3", "C", "x", "y") is False
        assert {s.name: s.ciphertext for s in store.secrets.all()} == {"A": "new-a", "B": "old-b"}
