"""One Store contract suite, parametrised over every backend, each built the way
the processes build it: from settings, through the plugin manager."""

from __future__ import annotations

import uuid

import pytest

from codeactions_core.plugins import get_plugin_manager
from codeactions_core.settings import Settings
from codeactions_core.testing.fixtures import reachable
from codeactions_core.testing.store_contract import StoreContract
from codeactions_core.wiring import open_store


def backend_settings(request, tmp_path) -> Settings:
    backend = request.param
    if backend == "sqlite":
        return Settings(db_type="sqlite", data_dir=str(tmp_path))
    if backend == "postgres":
        uri = request.getfixturevalue("new_postgres_database")()
        return Settings(db_type="postgres", db_uri=uri)
    mongo = pytest.importorskip("codeactions_mongo", reason="codeactions-mongo is not installed")
    name = f"ca_test_{uuid.uuid4().hex[:8]}"
    if backend == "mongomock":
        pytest.importorskip("mongomock")
        return Settings.of(
            mongo.MongoSettings,
            db_type="mongodb",
            mongo_db_uri="mongomock://localhost",
            mongo_db_name=name,
        )
    mongo_uri = request.getfixturevalue("suite_env").mongo_uri
    if not mongo_uri or not reachable(mongo_uri, 27017):
        pytest.skip("no MongoDB server: set FLOWS_CODE_ACTIONS_MONGO_DB_URI to one to run these")
    return Settings.of(
        mongo.MongoSettings, db_type="mongodb", mongo_db_uri=mongo_uri, mongo_db_name=name
    )


class TestEveryBackend(StoreContract):
    @pytest.fixture(
        params=[
            "sqlite",
            pytest.param("postgres", marks=pytest.mark.postgres),
            "mongomock",
            "mongodb",
        ]
    )
    def store(self, request, tmp_path):
        settings = backend_settings(request, tmp_path)
        store = open_store(settings, get_plugin_manager(settings))
        store.migrate()
        yield store
        store.close()
