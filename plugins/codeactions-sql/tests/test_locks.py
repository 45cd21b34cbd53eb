"""The shared lock contract, against SQLite and the real PostgreSQL."""

from __future__ import annotations

import pytest

from codeactions_core.testing.lock_contract import LockContract


class TestSqliteLocks(LockContract):
    @pytest.fixture
    def locks(self, fresh_sqlite_store):
        return fresh_sqlite_store.locks


@pytest.mark.postgres
class TestPostgresLocks(LockContract):
    @pytest.fixture
    def locks(self, fresh_postgres_store):
        return fresh_postgres_store.locks
