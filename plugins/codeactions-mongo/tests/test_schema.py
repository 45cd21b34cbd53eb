"""Schema versions: indexes, legacy field fixes, forcing and failures."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from bson import ObjectId
from codeactions_mongo import MongoStore
from codeactions_mongo.schema import LATEST_VERSION, MIGRATIONS

from codeactions_core.errors import SchemaBehind, StoreError
from codeactions_core.store import SchemaStatus

OLD = datetime(2023, 1, 1, tzinfo=UTC)


def index_keys(store: MongoStore, collection: str, *, unique: bool = False) -> list[list[tuple]]:
    indexes = store.database[collection].index_information().values()
    return [
        [(field, int(order)) for field, order in index["key"]]
        for index in indexes
        if index.get("unique", False) or not unique
    ]


def test_a_new_database_is_migrated_to_the_latest_version(new_mock_store) -> None:
    store = new_mock_store()
    assert store.schema_status() == SchemaStatus(current=0, latest=LATEST_VERSION)
    assert store.migrate() == [m.version for m in MIGRATIONS] == [1, 2, 3, 4, 11, 13]
    assert store.schema_status() == SchemaStatus(current=LATEST_VERSION, latest=LATEST_VERSION)
    assert store.migrate() == []
    records = list(store.database["schema_migrations"].find({}, {"_id": 0}))
    assert records == [{"version": LATEST_VERSION, "dirty": False}]


def test_indexes_back_the_unique_keys_and_the_listings(mock_store: MongoStore) -> None:
    unique = {
        name: index_keys(mock_store, name, unique=True)
        for name in ("project", "user_permissions", "codelib", "code")
    }
    assert unique == {
        "project": [[("uuid", 1)]],
        "user_permissions": [[("project_uuid", 1), ("email", 1)]],
        "codelib": [[("name", 1), ("language", 1)]],
        "code": [],
    }
    run_keys, log_keys = index_keys(mock_store, "coderun"), index_keys(mock_store, "codelog")
    assert [("code_id", 1), ("created_at", -1)] in run_keys
    assert [("run_id", 1), ("created_at", 1), ("_id", 1)] in log_keys
    assert [("code_id", 1), ("created_at", -1)] in log_keys


def test_flow_indexes_back_version_numbers_and_the_due_query(mock_store: MongoStore) -> None:
    unique = index_keys(mock_store, "flow_versions", unique=True)
    assert unique == [[("flow_definition_id", 1), ("version_number", 1)]]
    execution_keys = index_keys(mock_store, "flow_executions")
    assert [("status", 1), ("resume_at", 1)] in execution_keys
    assert [("flow_definition_id", 1), ("created_at", -1)] in execution_keys
    assert [("project_uuid", 1), ("created_at", -1)] in index_keys(mock_store, "flow_definitions")


def test_migrating_to_a_target_and_forcing_a_version(new_mock_store) -> None:
    store = new_mock_store()
    assert store.migrate(1) == [1]
    assert store.schema_status().current == 1
    assert store.migrate() == [2, 3, 4, 11, 13]
    other = new_mock_store()
    other.force_version(LATEST_VERSION)
    assert other.schema_status() == SchemaStatus(current=LATEST_VERSION, latest=LATEST_VERSION)
    assert other.migrate() == []
    assert other.database["project"].index_information() == {}  # forcing ran nothing
    assert other.database["flow_versions"].index_information() == {}


def test_a_dirty_schema_is_refused(new_mock_store) -> None:
    store = new_mock_store()
    store.database["schema_migrations"].insert_one({"version": 1, "dirty": True})
    assert store.schema_status() == SchemaStatus(current=1, latest=LATEST_VERSION, dirty=True)
    with pytest.raises(SchemaBehind, match="--force 1"):
        store.migrate()
    store.force_version(1)
    assert store.migrate() == [2, 3, 4, 11, 13]


def test_a_failed_migration_keeps_the_version_and_can_be_run_again(new_mock_store) -> None:
    store = new_mock_store()
    twins = [{"_id": ObjectId(), "name": "requests", "language": "python"} for _ in range(2)]
    store.database["codelib"].insert_many(twins)  # the old service never prevented this
    with pytest.raises(StoreError, match="migration 1 .indexes. failed"):
        store.migrate()
    assert store.schema_status() == SchemaStatus(current=0, latest=LATEST_VERSION)
    store.database["codelib"].delete_one({"_id": twins[1]["_id"]})
    assert store.migrate() == [1, 2, 3, 4, 11, 13]


def test_legacy_fields_are_copied_to_the_names_queries_use(new_mock_store) -> None:
    store = new_mock_store()
    code, run, log, project = ObjectId(), ObjectId(), ObjectId(), ObjectId()
    store.database["code"].insert_one({"_id": code, "type": "user", "creted_at": OLD})
    store.database["coderun"].insert_one({"_id": run, "code_id": code, "creted_at": OLD})
    store.database["codelog"].insert_one(
        {"_id": log, "run_id": run, "code_id": code, "creted_at": OLD}
    )
    store.database["project"].insert_one(
        {"_id": project, "uuid": "p", "createdat": OLD, "updatedat": OLD}
    )
    store.migrate()
    assert store.database["code"].find_one({"_id": code})["created_at"] == OLD
    assert store.database["code"].find_one({"_id": code})["type"] == "flow"
    assert store.database["project"].find_one({"_id": project})["updated_at"] == OLD
    cutoff = datetime(2024, 1, 1, tzinfo=UTC)
    assert store.runs.delete_older_than(cutoff, 10) == 1
    assert store.logs.delete_older_than(cutoff, 10) == 1
