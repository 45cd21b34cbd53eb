"""The shared flow store contract, against mongomock and (when configured) a real MongoDB."""

from __future__ import annotations

import pytest

from codeactions_core.testing.flow_store_contract import FlowStoreContract


class TestMongomockFlows(FlowStoreContract):
    races = False  # mongomock's find-and-modify is not atomic across threads

    @pytest.fixture
    def store(self, mock_store):
        return mock_store


class TestRealMongoFlows(FlowStoreContract):
    @pytest.fixture
    def store(self, real_mongo_store):
        return real_mongo_store
