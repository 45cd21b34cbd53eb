"""A PostgreSQL database as the old Go service left it: golang-migrate's migrations 1 to 5."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.support import ROOT

MIGRATIONS = ROOT / "plugins/codeactions-sql/codeactions_sql/migrations"


@contextmanager
def version_5_database(uri: str) -> Iterator[Any]:
    """Bring the empty database at ``uri`` to what golang-migrate and the old service leave
    behind (``schema_migrations`` at version 5, clean); a cursor (autocommit) for its rows."""
    import psycopg2

    connection = psycopg2.connect(uri)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE schema_migrations "
                "(version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)"
            )
            for version in range(1, 6):
                (path,) = MIGRATIONS.glob(f"{version:06d}_*.up.sql")
                cursor.execute(path.read_text())
            cursor.execute("INSERT INTO schema_migrations (version, dirty) VALUES (5, false)")
            yield cursor
    finally:
        connection.close()
