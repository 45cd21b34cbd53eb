"""The shared Store contract, against SQLite and the real PostgreSQL."""

from __future__ import annotations

import pytest

from codeactions_core.testing.store_contract import StoreContract


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def store(self, fresh_sqlite_store):
        return fresh_sqlite_store


@pytest.mark.postgres
class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store(self, fresh_postgres_store):
        return fresh_postgres_store
