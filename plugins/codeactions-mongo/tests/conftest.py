from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator

import pytest
from codeactions_mongo import MongoStore
from codeactions_mongo.client import Connection, open_client
from codeactions_mongo.settings import MongoSettings

from codeactions_core.errors import StoreError
from codeactions_core.settings import Settings, SuiteEnvironment

MOCK_URI = "mongomock://tests"


def fresh_name() -> str:
    return f"codeactions_test_{uuid.uuid4().hex[:12]}"


def mock_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "db_type": "mongodb",
        "mongo_db_uri": MOCK_URI,
        "mongo_db_name": fresh_name(),
    }
    values.update(overrides)
    return Settings.of(MongoSettings, **values)  # type: ignore[arg-type]


@pytest.fixture
def settings_for_mock() -> Callable[..., Settings]:
    """Settings of a mongodb store on a fresh in-memory database (overrides as keywords)."""
    return mock_settings


@pytest.fixture
def new_mock_store() -> Iterator[Callable[[], MongoStore]]:
    """A factory of stores on fresh, empty (unmigrated) in-memory databases, dropped afterwards."""
    stores: list[MongoStore] = []

    def create() -> MongoStore:
        store = MongoStore.from_settings(mock_settings())
        stores.append(store)
        return store

    yield create
    for store in stores:
        store.client.drop_database(store.database.name)
        store.close()


@pytest.fixture
def mock_store(new_mock_store) -> MongoStore:
    """A migrated, empty in-memory store."""
    store = new_mock_store()
    store.migrate()
    return store


@pytest.fixture(scope="session")
def real_mongo_connection() -> Iterator[Connection]:
    """One client, for the whole session, to the MongoDB of FLOWS_CODE_ACTIONS_MONGO_DB_URI."""
    uri = SuiteEnvironment.from_env().mongo_uri
    if not uri:
        pytest.skip("no MongoDB: FLOWS_CODE_ACTIONS_MONGO_DB_URI is not set")
    connection = open_client(uri, 4, server_selection_timeout_ms=2000)
    probe = MongoStore(connection, fresh_name())
    try:
        probe.ping()
    except StoreError as exc:
        probe.close()
        pytest.skip(f"MongoDB is not reachable: {exc.message}")
    yield dataclasses.replace(connection, shared=True)  # the stores below leave it open
    probe.close()


@pytest.fixture
def real_mongo_store(real_mongo_connection: Connection) -> Iterator[MongoStore]:
    """A migrated, empty database on the real MongoDB, dropped afterwards."""
    store = MongoStore(real_mongo_connection, fresh_name())
    store.migrate()
    yield store
    store.client.drop_database(store.database.name)
