"""The contract every LogStore must pass (the database's, S3's, a plugin's).

Subclass :class:`LogStoreContract` as ``TestMyLogStore`` and provide a
``log_store`` fixture yielding an empty log store::

    class TestMyLogStore(LogStoreContract):
        @pytest.fixture
        def log_store(self):
            yield make_my_log_store()

Runs are plain :class:`CodeRun` values made by the ``new_run`` fixture; a
Store's suite (``StoreContract``) overrides it to create them in its database.
Every write goes through :meth:`LogStoreContract.write`, which keeps what
``add_many`` returned on the run as ``extra["logs_location"]``, as the core does.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from codeactions_core.model import MAX_LOG_CONTENT, CodeLog, CodeRun, LogType, RunStatus, utcnow
from codeactions_core.store import LogStore

NOT_IDS = [
    "",
    "nope",
    "00000000-0000-0000-0000-000000000000",
    "0" * 24,
    "x" * 300,
    "'; DROP TABLE codes; --",
    "../../etc",
    "a/b",
]
LOG_KEYS = {"id", "run_id", "code_id", "type", "content", "created_at", "updated_at"}

NewRunFactory = Callable[..., CodeRun]


def log_line(run_id: str, code_id: str, content: str, kind: LogType = LogType.INFO) -> CodeLog:
    return CodeLog(id="", run_id=run_id, code_id=code_id, type=kind, content=content)


def line_at(
    run: CodeRun,
    content: str,
    at: datetime,
    kind: LogType = LogType.INFO,
    *,
    updated: datetime | None = None,
) -> CodeLog:
    """A log line of ``run`` created at ``at`` (and updated then, or at ``updated``)."""
    return CodeLog(
        id="",
        run_id=run.id,
        code_id=run.code_id,
        type=kind,
        content=content,
        created_at=at,
        updated_at=updated or at,
    )


def lines_of(run: CodeRun, *contents: str, at: datetime | None = None) -> list[CodeLog]:
    """Log lines of ``run``, created now or at ``at``."""
    moment = at or utcnow()
    return [line_at(run, text, moment) for text in contents]


def located(run: CodeRun, location: str | None) -> CodeRun:
    """The run as the core stores it after ``add_many`` answered ``location``."""
    if location is None:
        return run
    return dataclasses.replace(run, extra={**run.extra, "logs_location": location})


def contents(page) -> list[str]:
    return [log.content for log in page.items]


class LogStoreContract:
    @pytest.fixture
    def log_store(self) -> LogStore:  # pragma: no cover - always overridden
        raise NotImplementedError("provide a `log_store` fixture yielding an empty log store")

    @pytest.fixture
    def new_run(self) -> NewRunFactory:
        """A factory of runs to attach logs to: ``new_run(code_id=None)``."""

        def create(code_id: str | None = None) -> CodeRun:
            return CodeRun(
                id=str(uuid.uuid4()), code_id=code_id or str(uuid.uuid4()), status=RunStatus.STARTED
            )

        return create

    @staticmethod
    def write(log_store: LogStore, run: CodeRun, lines: Sequence[CodeLog]) -> CodeRun:
        """``add_many`` the lines; the run as it would be stored afterwards."""
        location = log_store.add_many(lines)
        assert location is None or (isinstance(location, str) and location)
        return located(run, location)

    def test_logs_keep_order_and_paginate(
        self, log_store: LogStore, new_run: NewRunFactory
    ) -> None:
        run = new_run()
        run = self.write(
            log_store, run, [log_line(run.id, run.code_id, f"line {i}") for i in range(25)]
        )
        first = log_store.list_by_run(run, page=1, per_page=20)
        second = log_store.list_by_run(run, page=2, per_page=20)
        assert (first.total, first.last_page, len(first.items), len(second.items)) == (25, 2, 20, 5)
        assert contents(first) + contents(second) == [f"line {i}" for i in range(25)]
        assert log_store.list_by_run(run, page=3, per_page=20).items == []
        one = first.items[3]
        assert log_store.get(one.id) == one
        assert (one.run_id, one.code_id, one.type) == (run.id, run.code_id, LogType.INFO)
        assert set(one.to_json()) == LOG_KEYS and one.to_json()["created_at"].endswith("Z")

    def test_logs_of_two_batches_keep_their_order(
        self, log_store: LogStore, new_run: NewRunFactory
    ) -> None:
        run = new_run()
        run = self.write(
            log_store, run, [log_line(run.id, run.code_id, text) for text in ("a", "b")]
        )
        run = self.write(
            log_store, run, [log_line(run.id, run.code_id, text) for text in ("c", "d")]
        )
        assert contents(log_store.list_by_run(run, page=1, per_page=20)) == ["a", "b", "c", "d"]

    def test_logs_of_other_runs_stay_apart(
        self, log_store: LogStore, new_run: NewRunFactory
    ) -> None:
        run = new_run()
        sibling = new_run(code_id=run.code_id)
        run = self.write(log_store, run, lines_of(run, "mine"))
        sibling = self.write(log_store, sibling, lines_of(sibling, "theirs"))
        assert contents(log_store.list_by_run(run, page=1, per_page=20)) == ["mine"]
        assert contents(log_store.list_by_run(sibling, page=1, per_page=20)) == ["theirs"]

    def test_a_run_without_logs_is_an_empty_page(
        self, log_store: LogStore, new_run: NewRunFactory
    ) -> None:
        assert log_store.add_many([]) is None
        page = log_store.list_by_run(new_run(), page=1, per_page=20)
        assert (page.items, page.total, page.last_page) == ([], 0, 0)

    def test_logs_of_a_code_newest_first(self, log_store: LogStore, new_run: NewRunFactory) -> None:
        older = new_run()
        newer = new_run(code_id=older.code_id)
        old_time = utcnow() - timedelta(minutes=1)
        self.write(log_store, older, [line_at(older, "old", old_time, LogType.DEBUG)])
        self.write(log_store, newer, [log_line(newer.id, newer.code_id, "new", LogType.ERROR)])
        page = log_store.list_by_code(older.code_id, page=1, per_page=20)
        assert contents(page) == ["new", "old"]
        assert page.items[0].type is LogType.ERROR
        assert log_store.list_by_code(new_run().code_id, page=1, per_page=20).total == 0

    def test_logs_of_a_code_paginate(self, log_store: LogStore, new_run: NewRunFactory) -> None:
        first = new_run()
        second = new_run(code_id=first.code_id)
        start = utcnow() - timedelta(minutes=5)
        self.write(
            log_store,
            first,
            [
                line_at(first, f"first {i}", start + timedelta(seconds=i), updated=start)
                for i in range(3)
            ],
        )
        self.write(
            log_store,
            second,
            [
                line_at(
                    second, f"second {i}", start + timedelta(minutes=1, seconds=i), updated=start
                )
                for i in range(3)
            ],
        )
        pages = [log_store.list_by_code(first.code_id, page=n, per_page=4) for n in (1, 2)]
        assert [(p.total, p.last_page) for p in pages] == [(6, 2), (6, 2)]
        assert contents(pages[0]) + contents(pages[1]) == [
            "second 2",
            "second 1",
            "second 0",
            "first 2",
            "first 1",
            "first 0",
        ]

    def test_long_log_content_is_truncated(
        self, log_store: LogStore, new_run: NewRunFactory
    ) -> None:
        run = new_run()
        run = self.write(
            log_store, run, [log_line(run.id, run.code_id, "é" * (MAX_LOG_CONTENT + 500))]
        )
        (stored,) = log_store.list_by_run(run, page=1, per_page=20).items
        assert stored.content == "é" * MAX_LOG_CONTENT

    def test_delete_old_logs(self, log_store: LogStore, new_run: NewRunFactory) -> None:
        run = new_run()
        old = datetime(2020, 1, 1, tzinfo=UTC)
        self.write(log_store, run, lines_of(run, "0", "1", "2", at=old))
        run = self.write(log_store, run, [log_line(run.id, run.code_id, "recent")])
        cutoff = datetime(2021, 1, 1, tzinfo=UTC)
        assert log_store.delete_older_than(utcnow() - timedelta(days=3650), 10) == 0
        assert [log_store.delete_older_than(cutoff, 2) for _ in range(3)] == [2, 1, 0]
        assert contents(log_store.list_by_run(run, page=1, per_page=20)) == ["recent"]
        assert contents(log_store.list_by_code(run.code_id, page=1, per_page=20)) == ["recent"]

    @pytest.mark.parametrize("bad_id", NOT_IDS)
    def test_unknown_log_ids_are_none_not_errors(self, log_store: LogStore, bad_id: str) -> None:
        assert log_store.get(bad_id) is None
        run = CodeRun(id=bad_id, code_id=bad_id, status=RunStatus.QUEUED)
        assert log_store.list_by_run(run, page=1, per_page=20).total == 0
        assert log_store.list_by_code(bad_id, page=1, per_page=20).total == 0
