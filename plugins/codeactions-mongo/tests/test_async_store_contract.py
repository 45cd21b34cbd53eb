"""The async run store contract (issue 15), against mongomock and a real MongoDB."""

from __future__ import annotations

import pytest

from codeactions_core.testing.async_store_contract import AsyncRunStoreContract


class TestMongomockAsyncRuns(AsyncRunStoreContract):
    @pytest.fixture
    def store(self, mock_store):
        return mock_store


class TestRealMongoAsyncRuns(AsyncRunStoreContract):
    @pytest.fixture
    def store(self, real_mongo_store):
        return real_mongo_store
