"""Codes the old service stored become version 1 when the schema reaches migration 11."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from bson import ObjectId

from codeactions_core.services.codes import CodeService


def test_migration_11_gives_stored_codes_version_1(new_mock_store) -> None:
    store = new_mock_store()
    store.migrate(3)
    first, second = ObjectId(), ObjectId()
    moment = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    store.database["code"].insert_many(
        [
            {
                "_id": first,
                "name": "a",
                "type": "endpoint",
                "source": "print('olá')",
                "language": "python",
                "project_uuid": "p",
                "timeout": 30,
                "created_at": moment,
                "updated_at": moment,
            },
            {"_id": second, "name": "b", "type": "flow", "source": "x", "project_uuid": "p"},
        ]
    )
    assert store.migrate() == [4, 11, 13]
    [version] = store.versions.list(str(first))
    assert (version.number, version.timeout, version.created_at) == (1, 30, moment)
    assert version.sha256 == hashlib.sha256("print('olá')".encode()).hexdigest()
    assert store.codes.get(str(first)).version == 1
    assert CodeService(store.codes, versions=store.versions).get(str(second)).version == 1
    assert [v.number for v in store.versions.list(str(second))] == [1]
