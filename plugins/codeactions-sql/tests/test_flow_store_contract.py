"""The shared flow store contract, against SQLite (with and without RETURNING) and PostgreSQL."""

from __future__ import annotations

import pytest

from codeactions_core.testing.flow_store_contract import FlowStoreContract


class TestSqliteFlows(FlowStoreContract):
    @pytest.fixture
    def store(self, fresh_sqlite_store):
        return fresh_sqlite_store


class TestSqliteFlowsWithoutReturning(FlowStoreContract):
    """SQLite before 3.35 has no RETURNING: conditional updates re-read in their transaction."""

    @pytest.fixture
    def store(self, fresh_sqlite_store):
        fresh_sqlite_store.database.returning_clause = False
        return fresh_sqlite_store


@pytest.mark.postgres
class TestPostgresFlows(FlowStoreContract):
    @pytest.fixture
    def store(self, fresh_postgres_store):
        return fresh_postgres_store
