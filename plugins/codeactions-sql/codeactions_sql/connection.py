"""Opening the database a URI names: pooled PostgreSQL, or a SQLite file."""

from __future__ import annotations

import heapq
import math
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import peewee
from playhouse.pool import (
    MaxConnectionsExceeded,
    PoolConnection,
    PooledDatabase,
    PooledPostgresqlDatabase,
    PooledSqliteDatabase,
)

from codeactions_core.errors import ConfigurationError, StoreError
from codeactions_core.settings import Settings
from codeactions_sql import deadlines

SQLITE_PRAGMAS = {
    "journal_mode": "wal",  # readers never wait for the writer
    "synchronous": "normal",
    "busy_timeout": 10_000,  # several server processes share the file
    "foreign_keys": 1,
}
EXCEPTION_WRAPPER = getattr(peewee, "__exception_wrapper__")  # noqa: B009 - a dunder name
POOL_WAIT_SECONDS = 10  # how long a request waits for a free pooled connection
CONNECT_TIMEOUT_SECONDS = 5.0  # the defaults of DB_CONNECT_TIMEOUT and DB_STATEMENT_TIMEOUT
STATEMENT_TIMEOUT_SECONDS = 10.0
STALE_SECONDS = 300


WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "ALTER", "DROP")


class SerializedSqliteDatabase(PooledSqliteDatabase):
    """SQLite with one writer at a time per process.

    SQLite lets one writer in at a time; a contended writer otherwise waits in
    SQLite's busy handler, which sleeps 1, 2, 5, 10 ms… between retries. A lock
    hands the turn over at once. Held for a whole transaction, or one write.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._writer = threading.RLock()
        self._turns = threading.local()  # transactions this thread holds the lock for

    def begin(self, *args: Any, **kwargs: Any) -> Any:
        self._writer.acquire()
        self._turns.count = getattr(self._turns, "count", 0) + 1
        try:
            return super().begin(*args, **kwargs)
        except BaseException:
            self._end_turn()
            raise

    def commit(self) -> Any:
        try:
            return super().commit()
        finally:
            self._end_turn()

    def rollback(self) -> Any:
        try:
            return super().rollback()
        finally:
            self._end_turn()

    def _end_turn(self) -> None:
        if getattr(self._turns, "count", 0):
            self._turns.count -= 1
            self._writer.release()

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        if self.in_transaction() or not sql.lstrip().upper().startswith(WRITES):
            return super().execute_sql(sql, params)
        with self._writer:
            return super().execute_sql(sql, params)


class ReusingPooledPostgresqlDatabase(PooledPostgresqlDatabase):
    """A PostgreSQL pool that asks the server whether a connection is alive
    (a ``SELECT 1`` round trip, peewee's default on every checkout) only for
    connections idle longer than ``LIVENESS_AFTER_IDLE``: a run checks a
    connection out twice, and one used a moment ago is all but certainly alive."""

    LIVENESS_AFTER_IDLE = 5.0
    liveness_seconds = CONNECT_TIMEOUT_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._returned_at: dict[int, float] = {}
        self._opening = 0  # connections being opened, outside the pool's lock

    def connect(self, reuse_if_open: bool = False) -> bool:
        """peewee's ``connect`` (waiting up to POOL_WAIT_SECONDS for a free connection) without
        its database-wide lock around the network round trips (see ``_connect``)."""
        deadline = time.monotonic() + self._wait_timeout
        while True:
            try:
                return self._open_for_thread(reuse_if_open)
            except MaxConnectionsExceeded:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise MaxConnectionsExceeded(
                        "Max connections exceeded, timed out attempting to connect."
                    ) from None
                with self._pool_available:
                    self._pool_available.wait(timeout=min(remaining, 1.0))

    def _open_for_thread(self, reuse_if_open: bool) -> bool:
        if not self._state.closed:  # the state is this thread's own
            if reuse_if_open:
                return False
            raise peewee.OperationalError("Connection already opened.")
        self._state.reset()
        with EXCEPTION_WRAPPER:
            conn = self._connect()
            self._state.set_connection(conn)
            if self.server_version is None:
                with self._lock:
                    self._set_server_version(conn)
            self._initialize_connection(conn)
        return True

    def close(self) -> bool:
        """peewee's ``close`` without its database-wide lock (the check-in may roll back)."""
        if self.in_transaction():
            raise peewee.OperationalError("Attempting to close database while transaction is open.")
        is_open = not self._state.closed
        try:
            if is_open:
                with EXCEPTION_WRAPPER:
                    self._close(self._state.conn)
        finally:
            self._state.reset()
        return is_open

    def _connect(self) -> Any:
        """peewee's checkout, but no network round trip under the pool's lock: a liveness
        check or a new connection to a server that does not answer would make every other
        thread wait behind it, one deadline after the other."""
        while True:
            with self._pool_lock:
                if not self._connections:
                    if self._max_connections and (
                        len(self._in_use) + self._opening >= self._max_connections
                    ):
                        raise MaxConnectionsExceeded("Exceeded maximum connections.")
                    self._opening += 1
                    break
                timestamp, _, conn = heapq.heappop(self._connections)
            try:
                closed = self._is_closed(conn)
            except peewee.OperationalError:
                self._close_raw(conn)
                raise
            if closed:
                continue
            if self._stale_timeout and self._is_stale(timestamp):
                self._close_raw(conn)
                continue
            with self._pool_lock:
                self._in_use[self.conn_key(conn)] = PoolConnection(timestamp, conn, time.time())
            return conn
        try:
            conn = super(PooledDatabase, self)._connect()
        finally:
            with self._pool_lock:
                self._opening -= 1
        with self._pool_lock:
            now = time.time()
            self._in_use[self.conn_key(conn)] = PoolConnection(now, conn, now)
        return conn

    def _is_closed(self, conn: Any) -> bool:
        returned = self._returned_at.get(self.conn_key(conn))
        if (
            returned is not None
            and time.monotonic() - returned < self.LIVENESS_AFTER_IDLE
            and not conn.closed
            and self._adapter.txn_status(conn) == self._adapter.txn_idle
        ):
            return False
        try:  # the round trip waits no longer than a connection attempt would
            with deadlines.limited(self.liveness_seconds):
                closed = super()._is_closed(conn)
        except deadlines.NoAnswer as exc:
            raise peewee.OperationalError(str(exc)) from exc
        if closed and conn.closed and deadlines.cut_recently(conn):
            # The server did not answer: trying the other pooled connections, one after
            # the other, would only multiply the wait. The request fails now (503).
            raise peewee.OperationalError("the database server does not answer (liveness check)")
        return closed

    def _close(self, conn: Any, close_conn: bool = False) -> None:
        if not close_conn and not conn.closed:
            try:  # a rollback, when needed, outside the pool's lock and bounded
                with deadlines.limited(self.liveness_seconds):
                    close_conn = not super()._can_reuse(conn)
            except Exception:  # noqa: BLE001 - unusable either way
                close_conn = True
        if close_conn:
            self._returned_at.pop(self.conn_key(conn), None)
        else:
            self._returned_at[self.conn_key(conn)] = time.monotonic()
        super()._close(conn, close_conn)

    def _close_raw(self, conn: Any) -> None:
        self._returned_at.pop(self.conn_key(conn), None)
        super()._close_raw(conn)


def postgres_params(
    uri: str, default_name: str, connect_timeout: float = CONNECT_TIMEOUT_SECONDS
) -> tuple[str, dict[str, object]]:
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
    params.setdefault("connect_timeout", max(2, math.ceil(connect_timeout)))  # whole seconds
    params.setdefault("application_name", "codeactions")
    return name, params


def database_uri(settings: Settings) -> str:
    """The SQL database's URI: DB_URI, else the default of the store DB_TYPE names."""
    if settings.db_uri:
        return settings.db_uri
    if settings.db_type == "postgres":
        return f"postgres://postgres@127.0.0.1:5432/{settings.db_name}"
    return f"sqlite:///{Path(settings.data_dir) / 'codeactions.db'}"


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


def open_postgres(
    uri: str,
    default_name: str,
    max_connections: int,
    *,
    synchronous_commit: bool = True,
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    statement_timeout: float = STATEMENT_TIMEOUT_SECONDS,
) -> peewee.Database:
    """A pool whose every wait is bounded: ``connect_timeout`` to connect,
    ``statement_timeout`` per statement (on the server, and on the client side for a
    server that does not answer at all, see ``deadlines``)."""
    name, params = postgres_params(uri, default_name, connect_timeout)
    options = [str(params.get("options", ""))] if params.get("options") else []
    if not synchronous_commit:
        options.append("-c synchronous_commit=off")
    options.append(f"-c statement_timeout={int(statement_timeout * 1000)}")
    params["options"] = " ".join(options)
    params["connection_factory"] = deadlines.BoundedConnection
    deadlines.install(connect_timeout, statement_timeout)
    database = ReusingPooledPostgresqlDatabase(
        name,
        max_connections=max_connections,
        stale_timeout=STALE_SECONDS,
        timeout=POOL_WAIT_SECONDS,
        **params,
    )
    database.liveness_seconds = connect_timeout
    return database


def open_sqlite(uri: str, max_connections: int) -> peewee.Database:
    path = sqlite_path(uri)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the directory of the SQLite database {path}: {exc}"
        ) from None
    return SerializedSqliteDatabase(
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
