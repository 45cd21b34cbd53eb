"""Bounded waits on PostgreSQL, even when the server is frozen or cut off.

``statement_timeout`` makes a running server cancel a slow statement, and
``connect_timeout`` bounds a connection attempt; neither helps when the server
process is stopped (SIGSTOP, a hung VM) or the network drops packets: the kernel
keeps the TCP connection open and libpq waits forever. So psycopg2 runs in its
"green" mode with a wait callback (psycopg2.extensions.set_wait_callback) that
waits for the socket with a deadline: past it, the socket is shut down, libpq
reports the connection lost, and the request answers 503. Only the codes' run
path's ordinary statements are bounded this way; ``unbounded()`` lifts the limit
for a thread (migrations).
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2.extensions

MARGIN_SECONDS = 2.0
"""How much longer than ``statement_timeout`` the client waits before it cuts the
connection: a live server's own timeout (a clean error) comes first."""

_limits = {"connect": 0.0, "statement": 0.0}
_local = threading.local()


def install(connect_seconds: float, statement_seconds: float) -> None:
    """Bound every wait of this process's psycopg2 connections (the last call wins)."""
    _limits["connect"] = connect_seconds
    _limits["statement"] = statement_seconds + MARGIN_SECONDS
    psycopg2.extensions.set_wait_callback(wait_with_deadline)


class BoundedConnection(psycopg2.extensions.connection):
    """A connection of the store's pools: the only ones whose waits get a deadline (the wait
    callback is process-wide; other psycopg2 connections of the process wait as usual)."""


class NoAnswer(psycopg2.OperationalError):
    """The server did not answer before the deadline: the connection was cut."""


@contextmanager
def limited(seconds: float) -> Iterator[None]:
    """At most ``seconds`` for each wait in this thread meanwhile (e.g. a liveness check)."""
    previous = getattr(_local, "limit", None)
    _local.limit = seconds
    try:
        yield
    finally:
        _local.limit = previous


@contextmanager
def unbounded() -> Iterator[None]:
    """No client-side deadline in this thread meanwhile (e.g. a long migration)."""
    previous = getattr(_local, "unbounded", False)
    _local.unbounded = True
    try:
        yield
    finally:
        _local.unbounded = previous


def wait_with_deadline(connection: psycopg2.extensions.connection) -> None:
    """psycopg2's wait callback: poll the connection until done or past the deadline."""
    connecting = connection.status == psycopg2.extensions.STATUS_SETUP
    limit = _limits["connect"] if connecting else _limits["statement"]
    limit = getattr(_local, "limit", None) or limit
    bounded = isinstance(connection, BoundedConnection) and not getattr(_local, "unbounded", False)
    deadline = time.monotonic() + limit if bounded and limit > 0 else None
    while True:
        state = connection.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        if state == psycopg2.extensions.POLL_READ:
            readable, writable = [connection.fileno()], []
        elif state == psycopg2.extensions.POLL_WRITE:
            readable, writable = [], [connection.fileno()]
        else:
            raise psycopg2.OperationalError(f"bad state from poll: {state}")
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            cut(connection)
            what = "connecting to" if connecting else "waiting for"
            raise NoAnswer(f"timed out after {limit:.1f}s {what} the database server (no answer)")
        try:
            select.select(readable, writable, [], remaining)
        except InterruptedError:
            continue


def cut_recently(connection: psycopg2.extensions.connection) -> bool:
    """Whether the last connection this thread cut for not answering is ``connection``."""
    cut_one = getattr(_local, "cut", None)
    _local.cut = None
    return cut_one is connection


def cut(connection: psycopg2.extensions.connection) -> None:
    """Shut the connection's socket down: the server may never answer, and libpq then
    finds the connection lost (closing it from here would wait on the server)."""
    _local.cut = connection
    try:
        sock = socket.socket(fileno=os.dup(connection.fileno()))
    except OSError:
        pass
    else:
        with sock:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
