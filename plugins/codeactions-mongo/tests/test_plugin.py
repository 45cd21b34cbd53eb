"""The hook, clients opened from settings, and failures turned into domain errors."""

from __future__ import annotations

import sys

import codeactions_mongo
import pytest
from bson import ObjectId
from codeactions_mongo import MongoStore
from codeactions_mongo.client import open_client
from codeactions_mongo.errors import safe_message
from codeactions_mongo.settings import MongoSettings

from codeactions_core.errors import ConfigurationError, Conflict, StoreError
from codeactions_core.model import CodeLog, CodeType, LogType, NewCode
from codeactions_core.plugins import get_plugin_manager, load_settings
from codeactions_core.settings import Settings
from codeactions_core.wiring import open_store

SECRET = "s3cret-pw"


def a_code() -> NewCode:
    return NewCode(
        name="hello",
        type=CodeType.FLOW,
        source="def Run(engine): pass",
        language="python",
        project_uuid="project-a",
        timeout=60,
    )


# -- the hook ---------------------------------------------------------------------------


def test_the_plugin_is_loaded_under_its_entry_point_name(settings_for_mock) -> None:
    pm = get_plugin_manager(settings_for_mock())
    assert pm.get_plugin("mongo") is codeactions_mongo


def test_open_store_gives_a_mongo_store_for_mongodb(settings_for_mock) -> None:
    settings = settings_for_mock()
    store = open_store(settings, get_plugin_manager(settings))
    try:
        assert isinstance(store, MongoStore)
        assert (store.kind, store.auto_migrate) == ("mongodb", True)
        assert store.database.name == settings.plugin(MongoSettings).mongo_db_name
        store.ping()
    finally:
        store.close()


@pytest.mark.parametrize("db_type", ["sqlite", "postgres"])
def test_the_hook_leaves_other_db_types_to_other_plugins(db_type: str) -> None:
    settings = Settings(db_type=db_type, disable_plugins=("sql",))
    assert codeactions_mongo.codeactions_store(settings=settings) is None
    with pytest.raises(ConfigurationError, match="no installed plugin provides"):
        open_store(settings, get_plugin_manager(settings))


# -- clients ----------------------------------------------------------------------------


def test_stores_on_one_mock_uri_share_their_data(settings_for_mock) -> None:
    settings = settings_for_mock(mongo_db_uri="mongomock://shared-by-two")
    first, second = MongoStore.from_settings(settings), MongoStore.from_settings(settings)
    db_name = settings.plugin(MongoSettings).mongo_db_name
    other = MongoStore.from_settings(
        settings.with_plugin(
            MongoSettings(mongo_db_uri="mongomock://another-server", mongo_db_name=db_name)
        )
    )
    code = first.codes.create(a_code())
    first.close()  # the in-memory server outlives a store, like a real one
    assert second.codes.get(code.id) == code
    assert other.codes.get(code.id) is None
    second.client.drop_database(db_name)


def test_a_mock_uri_without_mongomock_is_a_configuration_error(
    monkeypatch, settings_for_mock
) -> None:
    monkeypatch.setitem(sys.modules, "mongomock", None)  # makes `import mongomock` fail
    with pytest.raises(ConfigurationError, match="FLOWS_CODE_ACTIONS_MONGO_DB_URI.*mongomock"):
        MongoStore.from_settings(settings_for_mock())


def test_a_real_client_gets_the_pool_size_and_a_short_selection_timeout() -> None:
    settings = Settings.of(
        MongoSettings, db_type="mongodb", mongo_db_uri="mongodb://127.0.0.1:1", db_max_pool_size=7
    )
    store = MongoStore.from_settings(settings)  # connects lazily: nothing is reached here
    try:
        options = store.client.options
        assert options.pool_options.max_pool_size == 7
        assert options.server_selection_timeout == 5
        assert options.codec_options.tz_aware is True
        assert store.database.name == "code-actions"
    finally:
        store.close()


def test_an_invalid_uri_is_a_configuration_error_that_hides_it() -> None:
    settings = Settings.of(
        MongoSettings, db_type="mongodb", mongo_db_uri=f"http://admin:{SECRET}@db.example:27017"
    )
    with pytest.raises(ConfigurationError) as raised:
        MongoStore.from_settings(settings)
    assert raised.value.message.startswith("FLOWS_CODE_ACTIONS_MONGO_DB_URI: ")
    assert SECRET not in raised.value.message


def test_an_unreachable_server_is_a_store_error_that_names_no_credentials() -> None:
    uri = f"mongodb://admin:{SECRET}@127.0.0.1:1/"
    connection = open_client(uri, 2, server_selection_timeout_ms=100)
    store = MongoStore(connection, "unreachable")
    try:
        for attempt in (store.ping, store.schema_status, lambda: store.codes.get(str(ObjectId()))):
            with pytest.raises(StoreError) as raised:
                attempt()
            assert raised.value.message.startswith("MongoDB is unreachable: 127.0.0.1:1")
            assert SECRET not in raised.value.message and "admin" not in raised.value.message
    finally:
        store.close()


def test_a_duplicate_key_is_a_conflict(mock_store: MongoStore) -> None:
    run_id, code_id, log_id = (str(ObjectId()) for _ in range(3))
    line = CodeLog(id=log_id, run_id=run_id, code_id=code_id, type=LogType.INFO, content="once")
    mock_store.logs.add_many([line])
    with pytest.raises(Conflict):
        mock_store.logs.add_many([line])
    assert mock_store.logs.get(log_id).content == "once"


def test_messages_hide_uri_credentials_and_named_secrets() -> None:
    failure = Exception(f"failed for mongodb://admin:{SECRET}@db:27017/x with token tok-123\nmore")
    message = safe_message(failure, "tok-123")
    assert message == "failed for mongodb://<hidden>@db:27017/x with token <hidden>"


def test_a_mongodb_db_uri_is_the_mongo_uri_unless_one_is_set():
    def mongo_uri(environ: dict[str, str]) -> str:
        return load_settings(environ).plugin(MongoSettings).mongo_db_uri

    assert mongo_uri({"FLOWS_CODE_ACTIONS_DB_URI": "mongodb://h:27017"}) == "mongodb://h:27017"
    assert load_settings({"FLOWS_CODE_ACTIONS_DB_URI": "mongodb://h:27017"}).db_type == "mongodb"
    assert (
        mongo_uri(
            {
                "FLOWS_CODE_ACTIONS_DB_URI": "mongodb://h:27017",
                "FLOWS_CODE_ACTIONS_MONGO_DB_URI": "mongodb://other:27017",
            }
        )
        == "mongodb://other:27017"
    )
    assert mongo_uri({}) == "mongodb://localhost:27017"
