"""Cross-cutting request handling."""

from __future__ import annotations

import time
from typing import Any

import falcon

from codeactions_core.auth import ANONYMOUS
from codeactions_core.metrics import UNMATCHED_ROUTE, Metrics
from codeactions_core.services.access import AccessService
from codeactions_core.store import Store

PUBLIC = "public"
"""A resource with ``auth = PUBLIC`` needs no credentials (liveness, webhooks)."""
RUN = "run"
"""``auth = RUN``: ``POST /run``: identified like management; the resource checks the project."""
CONSUMED_HEADERS = ("Authorization",)
"""Headers holding the credentials this server reads: never handed to user code of a route
that is not public (the caller meant them for the server, not for the code)."""
MANAGEMENT = "management"
"""The default, also for plugin routes: the caller must be identified."""


class RecordRequestMetrics:
    """Count and time every request by its route template (``/code/{code_id}``), never its
    raw path, so that ids do not multiply the series."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        started = getattr(req.context, "started", None)
        if started is None:
            return
        route, status = req.uri_template or UNMATCHED_ROUTE, falcon.http_status_to_code(resp.status)
        seconds = time.perf_counter() - started
        self._metrics.http_request(req.method, route, status, seconds)
        self._metrics.http_exchange(
            req.method,
            route,
            status,
            seconds,
            host=req.get_header("Host") or "",
            request_bytes=req.content_length or 0,
            response_bytes=response_size(resp),
        )


def response_size(resp: falcon.Response) -> int:
    """Bytes of a response body (0 for a stream, whose size is not known here)."""
    try:
        body = resp.render_body()
    except (TypeError, ValueError, falcon.HTTPError):  # fails the request elsewhere
        return 0
    return len(body) if body is not None else 0


class ReleaseStoreConnection:
    """Return the request thread's database connection to the pool after every request."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        self._store.release()


class Authenticate:
    """Identify the caller of every route that is not public (``req.context.identity``).

    Authorization, which depends on the project a request touches, is then
    asked of the access service by the resource."""

    def __init__(self, access: AccessService) -> None:
        self._access = access

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict
    ) -> None:
        scope = getattr(resource, "auth", MANAGEMENT) if resource is not None else PUBLIC
        if scope == PUBLIC:
            req.context.identity = ANONYMOUS
            return
        req.context.identity = self._access.identify(
            {name.lower(): value for name, value in req.headers.items()}
        )
