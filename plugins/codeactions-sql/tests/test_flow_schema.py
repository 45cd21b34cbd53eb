"""Migration 000009 on both dialects: its constraints hold whatever writes the rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from importlib import resources

import peewee
import pytest
from codeactions_sql import SqlStore

from codeactions_core.flows.model import NewExecution, NewFlow, VersionStatus
from codeactions_core.settings import Settings

FLOW_TABLES = ("flow_definitions", "flow_versions", "flow_executions")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request) -> SqlStore:
    return request.getfixturevalue(f"fresh_{request.param}_store")


def migration_sql(store: SqlStore, direction: str) -> str:
    folder = resources.files("codeactions_sql") / "migrations"
    if store.kind == "sqlite":
        folder = folder / "sqlite"
    return (folder / f"000009_create_flows_tables.{direction}.sql").read_text(encoding="utf-8")


def run_script(store: SqlStore, sql: str) -> None:
    if store.kind == "sqlite":
        store.database.connection().executescript(sql)
    else:
        store.database.execute_sql(sql)


def test_at_most_one_published_version_per_flow_is_enforced(store: SqlStore) -> None:
    flow = store.flows.create_definition(NewFlow(name="f", project_uuid="p"))
    store.flows.create_version(flow.id, [])
    second = store.flows.create_version(flow.id, [])
    store.flows.publish(flow.id, 1, allowed_from=[VersionStatus.DRAFT])
    publish_too = f"UPDATE flow_versions SET status = 'published' WHERE id = {store.database.param}"
    with pytest.raises(peewee.IntegrityError):
        store.database.execute_sql(publish_too, (second.id,))
    other = store.flows.create_definition(NewFlow(name="g", project_uuid="p"))
    store.flows.create_version(other.id, [])
    # one per flow: another flow's version may be published too
    assert store.flows.publish(other.id, 1, allowed_from=[VersionStatus.DRAFT]) is not None


@pytest.mark.parametrize(
    ("table", "column"), [("flow_versions", "status"), ("flow_executions", "status")]
)
def test_statuses_are_checked(store: SqlStore, table: str, column: str) -> None:
    flow = store.flows.create_definition(NewFlow(name="f", project_uuid="p"))
    version = store.flows.create_version(flow.id, [])
    store.flows.create_execution(
        NewExecution(flow_definition_id=flow.id, flow_version_id=version.id)
    )
    with pytest.raises(peewee.IntegrityError):
        store.database.execute_sql(f"UPDATE {table} SET {column} = 'bogus'")


def test_executions_reference_stored_versions(store: SqlStore) -> None:
    flow = store.flows.create_definition(NewFlow(name="f", project_uuid="p"))
    p = store.database.param
    with pytest.raises(peewee.IntegrityError):
        store.database.execute_sql(
            "INSERT INTO flow_executions "
            "(id, flow_definition_id, flow_version_id, status, created_at) "
            f"VALUES ({p}, {p}, {p}, 'pending', {p})",
            (str(uuid.uuid4()), flow.id, str(uuid.uuid4()), "2024-01-01 00:00:00.000000"),
        )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def own_store(request, tmp_path) -> Iterator[SqlStore]:
    """A migrated store on a database of its own (its schema may be taken apart)."""
    if request.param == "sqlite":
        settings = Settings(db_type="sqlite", db_uri=f"sqlite:///{tmp_path / 'own.db'}")
    else:
        uri = request.getfixturevalue("new_postgres_database")()
        settings = Settings(db_type="postgres", db_uri=uri)
    store = SqlStore.from_settings(settings)
    store.migrate()
    yield store
    store.close()


def test_down_drops_the_flow_tables_and_up_restores_them(own_store: SqlStore) -> None:
    assert all(own_store.database.table_exists(table) for table in FLOW_TABLES)
    run_script(own_store, migration_sql(own_store, "down"))
    assert not any(own_store.database.table_exists(table) for table in FLOW_TABLES)
    assert own_store.database.table_exists("codes")
    run_script(own_store, migration_sql(own_store, "up"))
    assert all(own_store.database.table_exists(table) for table in FLOW_TABLES)
