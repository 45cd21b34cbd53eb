"""The PostgreSQL pool: liveness checks only after idling, broken connections discarded."""

from __future__ import annotations

import psycopg2
import pytest
from codeactions_sql import SqlStore

from codeactions_core.errors import StoreError
from codeactions_core.settings import Settings

pytestmark = pytest.mark.postgres


def terminate_our_connections(uri: str) -> int:
    admin = psycopg2.connect(uri)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'codeactions'"
        )
        (count,) = cursor.fetchone()
    admin.close()
    return count


@pytest.fixture
def store(migrated_postgres_uri):
    store = SqlStore.from_settings(Settings(db_type="postgres", db_uri=migrated_postgres_uri))
    yield store
    store.close()


def test_a_connection_idle_long_enough_is_checked_and_replaced(store, migrated_postgres_uri):
    store.ping()  # one pooled connection, now idle
    assert terminate_our_connections(migrated_postgres_uri) == 1
    store.database.LIVENESS_AFTER_IDLE = 0  # as if it had idled past the threshold
    assert store.codes.get("00000000-0000-0000-0000-000000000000") is None


def test_a_recently_used_dead_connection_fails_once_then_is_discarded(store, migrated_postgres_uri):
    store.ping()
    assert terminate_our_connections(migrated_postgres_uri) == 1
    with pytest.raises(StoreError, match="database unavailable"):
        store.codes.get("00000000-0000-0000-0000-000000000000")
    store.release()
    assert store.codes.get("00000000-0000-0000-0000-000000000000") is None


@pytest.mark.parametrize(("synchronous_runs", "history_mode"), [(False, "off"), (True, "on")])
def test_only_run_history_may_commit_asynchronously(
    migrated_postgres_uri, synchronous_runs, history_mode
):
    store = SqlStore.from_settings(
        Settings(
            db_type="postgres", db_uri=migrated_postgres_uri, db_synchronous_runs=synchronous_runs
        )
    )
    try:
        modes = {
            name: database.execute_sql("SHOW synchronous_commit").fetchone()[0]
            for name, database in (("codes", store.database), ("history", store.history))
        }
    finally:
        store.close()
    assert modes == {"codes": "on", "history": history_mode}


def test_the_database_uri_defaults_by_store_type(tmp_path):
    from codeactions_sql.connection import database_uri

    assert database_uri(Settings()) == "sqlite:///data/codeactions.db"
    assert database_uri(Settings(data_dir=str(tmp_path))) == f"sqlite:///{tmp_path}/codeactions.db"
    postgres = Settings(db_type="postgres", db_name="ca")
    assert database_uri(postgres) == "postgres://postgres@127.0.0.1:5432/ca"
    given = Settings(db_type="postgres", db_uri="postgres://u@127.0.0.1:5432/x")
    assert database_uri(given) == "postgres://u@127.0.0.1:5432/x"
