"""The contract every LockRepository must pass (each store's ``locks``, and Redis).

Subclass :class:`LockContract` in a test module as ``TestMyLocks`` and provide
a ``locks`` fixture; lock names are fresh in every test, so a database shared
between tests needs no cleaning::

    class TestMyLocks(LockContract):
        @pytest.fixture
        def locks(self, fresh_store):
            return fresh_store.locks
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import pytest

from codeactions_core.store import LockRepository

LONG = timedelta(seconds=60)
SHORT = timedelta(milliseconds=400)
DEADLINE_SECONDS = 10.0


def acquire_within(
    locks: LockRepository, name: str, holder: str, seconds: float = DEADLINE_SECONDS
) -> float:
    """Poll until ``holder`` takes ``name``; the monotonic time it did (fails after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if locks.try_acquire(name, holder, LONG):
            return time.monotonic()
        time.sleep(0.02)  # polling interval, not synchronisation
    pytest.fail(f"{holder} did not get the lock {name!r} within {seconds}s")


class LockContract:
    @pytest.fixture
    def locks(self) -> LockRepository:  # pragma: no cover - always overridden
        raise NotImplementedError("provide a `locks` fixture")

    @pytest.fixture
    def name(self) -> str:
        return f"contract-{uuid.uuid4().hex}"

    def test_one_holder_at_a_time(self, locks: LockRepository, name: str) -> None:
        assert locks.try_acquire(name, "a", LONG) is True
        assert locks.try_acquire(name, "b", LONG) is False
        assert locks.try_acquire(name, "a", LONG) is False  # not re-entrant while held

    def test_locks_are_independent_by_name(self, locks: LockRepository, name: str) -> None:
        assert locks.try_acquire(name, "a", LONG) is True
        assert locks.try_acquire(name + "-other", "b", LONG) is True

    def test_only_the_holder_releases(self, locks: LockRepository, name: str) -> None:
        assert locks.try_acquire(name, "a", LONG) is True
        assert locks.release(name, "b") is False
        assert locks.try_acquire(name, "b", LONG) is False  # still a's
        assert locks.release(name, "a") is True
        assert locks.release(name, "a") is False
        assert locks.try_acquire(name, "b", LONG) is True

    def test_releasing_an_unknown_lock_is_false(self, locks: LockRepository, name: str) -> None:
        assert locks.release(name, "a") is False

    def test_a_crashed_holders_lock_expires(self, locks: LockRepository, name: str) -> None:
        started = time.monotonic()
        assert locks.try_acquire(name, "crashed", SHORT) is True  # and never released
        assert locks.try_acquire(name, "b", LONG) is False
        taken = acquire_within(locks, name, "b")
        assert taken - started >= SHORT.total_seconds() * 0.9  # not before it expired
        assert locks.release(name, "crashed") is False  # the old holder cannot free b's lock
        assert locks.try_acquire(name, "c", LONG) is False
        assert locks.release(name, "b") is True

    def test_the_old_holder_can_take_it_again_after_expiry(
        self, locks: LockRepository, name: str
    ) -> None:
        assert locks.try_acquire(name, "a", SHORT) is True
        acquire_within(locks, name, "a")
        assert locks.try_acquire(name, "b", LONG) is False

    def test_racing_holders_get_it_exactly_once(self, locks: LockRepository, name: str) -> None:
        holders = [f"h{i}" for i in range(8)]
        start = threading.Barrier(len(holders))
        winners: list[str] = []

        def race(holder: str) -> None:
            start.wait()
            if locks.try_acquire(name, holder, LONG):
                winners.append(holder)

        threads = [threading.Thread(target=race, args=(holder,)) for holder in holders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(winners) == 1
        assert locks.release(name, winners[0]) is True
