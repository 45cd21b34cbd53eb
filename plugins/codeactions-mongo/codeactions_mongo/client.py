"""Opening the MongoDB client a URI names, or a process-wide in-memory one.

``mongomock://<anything>`` is a test and development aid: it gives the
in-memory client of the mongomock package, one per URI in a process, so every
store opened with the same URI sees the same data, as with a real server.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from codeactions_core.errors import ConfigurationError
from codeactions_mongo.errors import safe_message

URI_VARIABLE = "FLOWS_CODE_ACTIONS_MONGO_DB_URI"
MOCK_SCHEME = "mongomock"
SERVER_SELECTION_TIMEOUT_MS = 5000  # fail fast when the server is down
SOCKET_TIMEOUT_MS = 12000  # DB_STATEMENT_TIMEOUT's default plus a margin
APP_NAME = "codeactions"

_mock_clients: dict[str, Any] = {}
_mock_clients_lock = threading.Lock()


@dataclass(frozen=True)
class Connection:
    client: Any
    """A ``pymongo.MongoClient``, or a ``mongomock.MongoClient`` for ``mongomock://``."""

    shared: bool = False
    """True for the process-wide in-memory client, which a store never closes."""


def is_mock_uri(uri: str) -> bool:
    return urlsplit(uri).scheme.lower() == MOCK_SCHEME


def open_client(
    uri: str,
    max_pool_size: int,
    *,
    server_selection_timeout_ms: int = SERVER_SELECTION_TIMEOUT_MS,
    connect_timeout_ms: int = SERVER_SELECTION_TIMEOUT_MS,
    socket_timeout_ms: int = SOCKET_TIMEOUT_MS,
) -> Connection:
    """The client for ``uri``; it connects on first use, so a down server fails then. Every
    wait is bounded: server selection, connecting, and each operation's socket reads (a
    frozen server answers nothing; the operation fails after ``socket_timeout_ms``)."""
    if is_mock_uri(uri):
        return Connection(mock_client(uri), shared=True)
    try:
        client = MongoClient(
            uri,
            maxPoolSize=max_pool_size,
            serverSelectionTimeoutMS=server_selection_timeout_ms,
            connectTimeoutMS=connect_timeout_ms,
            socketTimeoutMS=socket_timeout_ms,
            tz_aware=True,
            connect=False,
            appname=APP_NAME,
        )
    except (PyMongoError, ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"{URI_VARIABLE}: not a usable MongoDB URI: {safe_message(exc, uri)}"
        ) from None
    return Connection(client)


def mock_client(uri: str) -> Any:
    """The in-memory client of ``uri``, created on first use."""
    try:
        import mongomock
    except ImportError:
        raise ConfigurationError(
            f"{URI_VARIABLE}: {MOCK_SCHEME}:// URIs need the mongomock package "
            "(pip install 'codeactions-mongo[test]')"
        ) from None
    with _mock_clients_lock:
        client = _mock_clients.get(uri)
        if client is None:
            client = _mock_clients[uri] = mongomock.MongoClient(tz_aware=True)
        return client
