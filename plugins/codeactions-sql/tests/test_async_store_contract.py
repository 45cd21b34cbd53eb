"""The async run store contract (issue 15), against SQLite and the real PostgreSQL."""

from __future__ import annotations

import pytest

from codeactions_core.testing.async_store_contract import AsyncRunStoreContract


class TestSqliteAsyncRuns(AsyncRunStoreContract):
    @pytest.fixture
    def store(self, fresh_sqlite_store):
        return fresh_sqlite_store


@pytest.mark.postgres
class TestPostgresAsyncRuns(AsyncRunStoreContract):
    @pytest.fixture
    def store(self, fresh_postgres_store):
        return fresh_postgres_store
