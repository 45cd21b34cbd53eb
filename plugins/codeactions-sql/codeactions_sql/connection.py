"""Opening the database a URI names: pooled PostgreSQL, or a SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import peewee
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

from codeactions_core.errors import ConfigurationError, StoreError

SQLITE_PRAGMAS = {
    "journal_mode": "wal",  # readers never wait for the writer
    "synchronous": "normal",
    "busy_timeout": 10_000,  # several server processes share the file
    "foreign_keys": 1,
}
POOL_WAIT_SECONDS = 10  # how long a request waits for a free pooled connection
STALE_SECONDS = 300


def postgres_params(uri: str, default_name: str) -> tuple[str, dict[str, object]]:
    """Database name and psycopg2 connect arguments of a ``postgres://`` URI."""
    parts = urlsplit(uri)
    name = unquote(parts.path.lstrip("/")) or default_name
    params: dict[str, object] = dict(parse_qsl(parts.query))
    if parts.hostname:
        params["host"] = parts.hostname
    if parts.port:
        params["port"] = parts.port
    if parts.username:
        params["user"] = unquote(parts.username)
    if parts.password:
        params["password"] = unquote(parts.password)
    params.setdefault("connect_timeout", 5)
    params.setdefault("application_name", "codeactions")
    return name, params


def sqlite_path(uri: str) -> Path:
    """The file of a ``sqlite:///relative`` or ``sqlite:////absolute`` URI."""
    path = uri.split(":", 1)[1]
    if path.startswith("///"):
        path = path[3:]  # what remains is relative, or absolute when it starts with "/"
    elif path.startswith("//"):
        path = path[2:]
    if not path or path == ":memory:":
        raise ConfigurationError(
            "FLOWS_CODE_ACTIONS_DB_URI: a SQLite store needs a file, e.g. sqlite:///data/codeactions.db"
        )
    return Path(path)


def open_postgres(uri: str, default_name: str, max_connections: int) -> peewee.Database:
    name, params = postgres_params(uri, default_name)
    return PooledPostgresqlDatabase(
        name,
        max_connections=max_connections,
        stale_timeout=STALE_SECONDS,
        timeout=POOL_WAIT_SECONDS,
        **params,
    )


def open_sqlite(uri: str, max_connections: int) -> peewee.Database:
    path = sqlite_path(uri)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the directory of the SQLite database {path}: {exc}") from None
    return PooledSqliteDatabase(
        str(path),
        max_connections=max_connections,
        stale_timeout=STALE_SECONDS,
        timeout=POOL_WAIT_SECONDS,
        pragmas=SQLITE_PRAGMAS,
        check_same_thread=False,
        returning_clause=sqlite3.sqlite_version_info >= (3, 35, 0),
    )


def create_postgres_database(uri: str, default_name: str) -> bool:
    """Create the database a URI names when it does not exist; True when created."""
    import psycopg2
    from psycopg2 import sql

    name, params = postgres_params(uri, default_name)
    connection = psycopg2.connect(dbname="postgres", **params)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone():
                return False
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    finally:
        connection.close()
