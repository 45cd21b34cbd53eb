"""The shared Store contract, against mongomock and (when configured) a real MongoDB."""

from __future__ import annotations

import pytest

from codeactions_core.testing.store_contract import StoreContract


class TestMongomockStore(StoreContract):
    @pytest.fixture
    def store(self, mock_store):
        return mock_store


class TestRealMongoStore(StoreContract):
    @pytest.fixture
    def store(self, real_mongo_store):
        return real_mongo_store
