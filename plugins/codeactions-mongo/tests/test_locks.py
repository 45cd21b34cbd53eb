"""The shared lock contract, against mongomock and (when configured) a real MongoDB."""

from __future__ import annotations

import pytest

from codeactions_core.testing.lock_contract import LockContract


class TestMongomockLocks(LockContract):
    @pytest.fixture
    def locks(self, mock_store):
        return mock_store.locks


class TestRealMongoLocks(LockContract):
    @pytest.fixture
    def locks(self, real_mongo_store):
        return real_mongo_store.locks
