"""One error shape for every failure: ``{"message": "<human readable reason>"}``."""

from __future__ import annotations

import logging
from typing import Any

import falcon

from codeactions_core import errors
from codeactions_core.faults import storage_full, storage_full_message

log = logging.getLogger(__name__)

STATUS_OF: dict[type[errors.CodeActionsError], str] = {
    errors.LengthRequired: falcon.HTTP_411,
    errors.InvalidInput: falcon.HTTP_400,
    errors.Unauthenticated: falcon.HTTP_401,
    errors.Forbidden: falcon.HTTP_403,
    errors.NotFound: falcon.HTTP_404,
    errors.Conflict: falcon.HTTP_409,
    errors.TooManyRequests: falcon.HTTP_429,
    errors.Unavailable: falcon.HTTP_503,
    errors.StoreError: falcon.HTTP_503,
}


def render(resp: falcon.Response, status: str, message: str) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.media = {"message": message}


def handle_domain_error(
    req: falcon.Request, resp: falcon.Response, ex: errors.CodeActionsError, params: dict[str, Any]
) -> None:
    for kind in type(ex).__mro__:
        if kind in STATUS_OF:
            message = ex.message
            if kind is errors.StoreError:
                full = storage_full(ex)
                message = storage_full_message(full) if full else message
                log.error("store failure: %s (on %s %s)", message, req.method, route_of(req))
            render(resp, STATUS_OF[kind], message)
            if isinstance(ex, errors.TooManyRequests):
                resp.set_header("Retry-After", str(ex.retry_after))
            return
    handle_unexpected(req, resp, ex, params)


def route_of(req: falcon.Request) -> str:
    """The route template (``/code/{code_id}``), so that the same failure on many ids logs
    identical lines (throttled together) and no id reaches the log."""
    return req.uri_template or "(no route)"


def handle_route_not_found(
    req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
) -> None:
    render(resp, falcon.HTTP_404, f"no route for {req.method} {req.path}")


def handle_method_not_allowed(
    req: falcon.Request,
    resp: falcon.Response,
    ex: falcon.HTTPMethodNotAllowed,
    params: dict[str, Any],
) -> None:
    allowed = ex.headers.get("Allow", "") if ex.headers else ""
    render(
        resp,
        falcon.HTTP_405,
        f"method {req.method} is not allowed on {req.path}; allowed: {allowed}",
    )
    if allowed:
        resp.set_header("Allow", allowed)


def handle_malformed_media(
    req: falcon.Request,
    resp: falcon.Response,
    ex: falcon.MediaMalformedError,
    params: dict[str, Any],
) -> None:
    cause = f": {ex.__cause__}" if ex.__cause__ else ""
    render(resp, falcon.HTTP_400, f"malformed JSON body{cause}")


def handle_unexpected(
    req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
) -> None:
    if isinstance(ex, falcon.HTTPError):
        serialize_http_error(req, resp, ex)
        return
    full = storage_full(ex)
    if full:
        log.error("storage full: %s (on %s %s)", full, req.method, route_of(req))
        render(resp, falcon.HTTP_503, storage_full_message(full))
        return
    log.exception("unhandled error on %s %s", req.method, req.path)
    render(resp, falcon.HTTP_500, "internal server error")


def handle_http_error(
    req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: dict[str, Any]
) -> None:
    serialize_http_error(req, resp, ex)


def serialize_http_error(req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError) -> None:
    """Falcon's own errors (415, 413, ...) in our shape."""
    resp.status = ex.status
    for name, value in (ex.headers or {}).items():
        resp.set_header(name, value)
    render(resp, ex.status, ex.description or ex.title)


def install(app: falcon.App) -> None:
    """Register the handlers; the most specific class is matched first."""
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(falcon.HTTPError, handle_http_error)
    app.add_error_handler(falcon.HTTPRouteNotFound, handle_route_not_found)
    app.add_error_handler(falcon.HTTPMethodNotAllowed, handle_method_not_allowed)
    app.add_error_handler(falcon.MediaMalformedError, handle_malformed_media)
    app.add_error_handler(errors.CodeActionsError, handle_domain_error)
