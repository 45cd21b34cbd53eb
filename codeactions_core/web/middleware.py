"""Cross-cutting request handling."""

from __future__ import annotations

from typing import Any

import falcon

from codeactions_core.store import Store


class ReleaseStoreConnection:
    """Return the request thread's database connection to the pool after every request."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        self._store.release()
