"""The part of the store contract about code versions (``Store.versions``) and the
version every run records; mixed into
:class:`~codeactions_core.testing.store_contract.StoreContract`."""

from __future__ import annotations

import hashlib
import threading

from codeactions_core.model import NewCodeVersion, RunStatus
from codeactions_core.store import NewRun, Store
from codeactions_core.testing.log_store_contract import NOT_IDS
from codeactions_core.testing.records import new_code

SOURCE_V2 = "def Run(engine):\n    engine.result.set('dois ✓')\n"


def draft(source: str, language: str = "python", timeout: int = 60, **extra: str) -> NewCodeVersion:
    return NewCodeVersion(source=source, language=language, timeout=timeout, **extra)


class VersionStoreContract:
    def _code(self, store: Store):  # a code as created before versions existed (no version)
        return store.codes.create(new_code())

    def test_commit_numbers_versions_and_changes_the_code_with_them(self, store: Store) -> None:
        code = self._code(store)
        first = store.versions.commit(code.id, draft(code.source, author="ana@example.org"))
        second = store.versions.commit(
            code.id, draft(SOURCE_V2, language="javascript", timeout=30, note="faster")
        )
        assert (first.number, second.number) == (1, 2)
        assert second.sha256 == hashlib.sha256(SOURCE_V2.encode()).hexdigest()
        assert (first.author, second.note) == ("ana@example.org", "faster")
        stored = store.codes.get(code.id)
        assert (stored.version, stored.source, stored.language, stored.timeout) == (
            2,
            SOURCE_V2,
            "javascript",
            30,
        )
        assert store.versions.get(code.id, 1).source == code.source
        assert store.versions.get(code.id, 2) == second
        assert [v.number for v in store.versions.list(code.id)] == [2, 1]
        assert store.versions.get(code.id, 3) is None

    def test_a_code_stored_before_versions_gets_version_1_once(self, store: Store) -> None:
        code = self._code(store)
        assert code.version is None and store.versions.list(code.id) == []
        first = store.versions.ensure_first(code.id, draft(code.source))
        again = store.versions.ensure_first(code.id, draft("ignored"))
        assert (first.number, again.number, again.source) == (1, 1, code.source)
        assert store.codes.get(code.id).version == 1
        store.versions.commit(code.id, draft(SOURCE_V2))
        assert store.versions.ensure_first(code.id, draft("ignored")).number == 2

    def test_concurrent_commits_get_distinct_numbers(self, store: Store) -> None:
        code = self._code(store)
        numbers: list[int] = []
        errors: list[BaseException] = []

        def commit(index: int) -> None:
            try:
                numbers.append(store.versions.commit(code.id, draft(f"# {index}\n")).number)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                store.release()

        threads = [threading.Thread(target=commit, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(numbers) == [1, 2, 3, 4, 5, 6]
        assert store.codes.get(code.id).version == 6

    def test_versions_of_unknown_codes_are_none(self, store: Store) -> None:
        for bad_id in NOT_IDS:  # one test: each id costs a fresh store on PostgreSQL
            assert store.versions.commit(bad_id, draft("x")) is None
            assert store.versions.ensure_first(bad_id, draft("x")) is None
            assert store.versions.get(bad_id, 1) is None
            assert store.versions.list(bad_id) == []
            assert store.versions.delete_for_code(bad_id) == 0

    def test_delete_for_code(self, store: Store) -> None:
        code, other = self._code(store), self._code(store)
        for target in (code, other):
            store.versions.commit(target.id, draft("a"))
            store.versions.commit(target.id, draft("b"))
        assert store.versions.delete_for_code(code.id) == 2
        assert store.versions.list(code.id) == []
        assert len(store.versions.list(other.id)) == 2

    def test_a_run_records_the_version_it_ran(self, store: Store) -> None:
        code = self._code(store)
        pinned = store.runs.create(NewRun(code_id=code.id, version=3))
        legacy = store.runs.create(NewRun(code_id=code.id))
        assert store.runs.get(pinned.id).version == 3
        assert store.runs.get(legacy.id).version is None
        assert "version" not in store.runs.get(legacy.id).to_json()
        done = store.runs.update(pinned.id, status=RunStatus.COMPLETED, result="ok")
        assert done.version == 3 and done.to_json()["version"] == 3
        assert {run.id: run.version for run in store.runs.list_by_code(code.id)} == {
            pinned.id: 3,
            legacy.id: None,
        }
