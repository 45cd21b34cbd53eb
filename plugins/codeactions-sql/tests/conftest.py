from __future__ import annotations

from collections.abc import Iterator

import pytest
from codeactions_sql import SqlStore

from codeactions_core.settings import Settings
from codeactions_core.testing.fixtures import (  # noqa: F401 - fixtures, found here by name
    new_postgres_database,
    postgres_server_uri,
    postgres_uri,
    suite_env,
)

TABLES = (
    "codes",
    "coderuns",
    "codelogs",
    "codelibs",
    "user_permissions",
    "projects",
    "flow_executions",
    "flow_versions",
    "flow_definitions",
    "project_secrets",
    "code_versions",
    "schedule_firings",
    "schedules",
)


def sqlite_store(path) -> SqlStore:
    return SqlStore.from_settings(Settings(db_type="sqlite", db_uri=f"sqlite:///{path}"))


@pytest.fixture
def fresh_sqlite_store(tmp_path) -> Iterator[SqlStore]:
    store = sqlite_store(tmp_path / "store.db")
    store.migrate()
    yield store
    store.close()


@pytest.fixture(scope="session")
def migrated_postgres_uri(postgres_uri: str) -> str:  # noqa: F811 - the fixture imported above
    store = SqlStore.from_settings(Settings(db_type="postgres", db_uri=postgres_uri))
    store.migrate()
    store.close()
    return postgres_uri


@pytest.fixture
def fresh_postgres_store(migrated_postgres_uri: str) -> Iterator[SqlStore]:
    store = SqlStore.from_settings(Settings(db_type="postgres", db_uri=migrated_postgres_uri))
    store.database.execute_sql(f"TRUNCATE {', '.join(TABLES)}")
    yield store
    store.close()
