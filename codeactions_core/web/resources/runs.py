"""``/run``, ``/endpoint`` and ``/action/endpoint``: running a code over HTTP."""

from __future__ import annotations

from collections.abc import Callable

import falcon

from codeactions_core.errors import TooManyRequests, Unauthenticated
from codeactions_core.execution.runtime import RunRequest
from codeactions_core.model import Code, RunStatus, canonical_id
from codeactions_core.ratelimit import RateLimiter
from codeactions_core.services.access import AccessService
from codeactions_core.services.async_runs import AsyncRunService
from codeactions_core.services.runs import RunResult, RunService
from codeactions_core.web.code_response import answer_with_outcome
from codeactions_core.web.middleware import CONSUMED_HEADERS, PUBLIC, RUN
from codeactions_core.web.requests import (
    first_param,
    first_params,
    headers_from_environ,
    read_body,
    without_headers,
)
from codeactions_core.web.resources.async_runs import (
    answer_accepted,
    asks_async,
    callback_url,
    prefers_async,
    without_control_params,
)

RUN_BODY_LIMIT = 10 * 1024 * 1024
CONTENT_TYPES = {
    "json": "application/json; charset=UTF-8",
    "html": "text/html; charset=UTF-8",
}
PLAIN_TEXT = "text/plain; charset=UTF-8"
ANY_METHOD = ("get", "post", "put", "patch", "delete", "head", "options")


def run_request(req: falcon.Request, *, public: bool = True) -> RunRequest:
    """What the code gets; on a non-public route, without the credentials the server read."""
    body = read_body(req, RUN_BODY_LIMIT, "body")
    headers = headers_from_environ(req.env)
    return RunRequest(
        params=first_params(req),
        body=body.decode("utf-8", errors="replace"),
        headers=headers if public else without_headers(headers, CONSUMED_HEADERS),
    )


def pinned_version(req: falcon.Request) -> str | None:
    """``?version=n``: the code version a run pins (checked by the run service)."""
    value = first_param(req, "version")
    return value if value not in (None, "") else None


def may_pin(access: AccessService | None, req: falcon.Request) -> Callable[[Code], None] | None:
    """On the public routes, pinning a version is for callers who may run the code (as on
    ``/run``), once auth is configured: an old version may lack a fix its author made."""
    if access is None or access.open:
        return None
    identity = access.authenticated({name.lower(): value for name, value in req.headers.items()})

    def authorize(code: Code) -> None:
        if identity is None:
            raise Unauthenticated(
                "?version= on a public route needs the credentials of a caller who may run "
                "the code (Authorization header)"
            )
        access.require_run(identity, code.project_uuid)

    return authorize


def limit(limiter: RateLimiter, req: falcon.Request, resp: falcon.Response, code_id: str) -> None:
    """Count the request on its code's one counter (whatever the id's spelling); 429 past it."""
    decision = limiter.hit(canonical_id(code_id))
    resp.set_headers(decision.headers())
    if not decision.allowed:
        raise TooManyRequests(
            f"code {code_id} is limited to {decision.limit} requests per "
            f"{limiter.window} s; try again in {decision.reset_seconds} s",
            retry_after=decision.reset_seconds,
        )


def answer_failure(resp: falcon.Response, result: RunResult) -> bool:
    """A timed-out or failed run answers 408 or 500 with its reason; True when it did."""
    if result.outcome.timed_out:
        resp.status = falcon.HTTP_408
    elif result.run.status is RunStatus.FAILED:
        resp.status = falcon.HTTP_500
    else:
        return False
    resp.media = {"message": result.run.result}
    return True


class RunCode:
    """``POST /run/{code_id}``: any code the caller may run (its project), answered with the run."""

    auth = RUN

    def __init__(
        self, runs: RunService, access: AccessService, async_runs: AsyncRunService | None = None
    ) -> None:
        self._runs = runs
        self._access = access
        self._async_runs = async_runs

    def on_post(self, req: falcon.Request, resp: falcon.Response, code_id: str) -> None:
        identity = req.context.identity

        def authorize(code: Code) -> None:
            self._access.require_run(identity, code.project_uuid)

        if self._async_runs is not None and asks_async(req):
            request = without_control_params(run_request(req, public=False))
            accepted = self._async_runs.accept(
                code_id, request, callback_url=callback_url(req), authorize=authorize
            )
            answer_accepted(resp, accepted, code_id)
            return
        result = self._runs.run(
            code_id,
            run_request(req, public=False),
            authorize=authorize,
            version=pinned_version(req),
        )
        resp.media = {"code_id": code_id, "result": result.run.to_json()}


class Endpoint:
    """``ANY /endpoint/{code_id}``: an endpoint code, answered with its raw result; rate limited
    per code like ``/action/endpoint`` (the same counter)."""

    auth = PUBLIC

    def __init__(
        self, runs: RunService, limiter: RateLimiter, access: AccessService | None = None
    ) -> None:
        self._runs = runs
        self._limiter = limiter
        self._access = access

    def handle(self, req: falcon.Request, resp: falcon.Response, code_id: str) -> None:
        limit(self._limiter, req, resp, code_id)
        version = pinned_version(req)
        result = self._runs.run(
            code_id,
            run_request(req),
            endpoints_only=True,
            version=version,
            authorize=may_pin(self._access, req) if version is not None else None,
        )
        if not answer_failure(resp, result):
            resp.content_type = PLAIN_TEXT
            resp.text = result.run.result


class ActionEndpoint:
    """``ANY /action/endpoint/{code_id}``: the public entry, rate limited per code;
    the code shapes the response (``Prefer: respond-async``: 202 at once, run later)."""

    auth = PUBLIC

    def __init__(
        self,
        runs: RunService,
        limiter: RateLimiter,
        access: AccessService | None = None,
        async_runs: AsyncRunService | None = None,
    ) -> None:
        self._runs = runs
        self._limiter = limiter
        self._access = access
        self._async_runs = async_runs

    def handle(self, req: falcon.Request, resp: falcon.Response, code_id: str) -> None:
        limit(self._limiter, req, resp, code_id)
        if self._async_runs is not None and prefers_async(req):
            accepted = self._async_runs.accept(
                code_id,
                without_control_params(run_request(req)),
                callback_url=callback_url(req),
                endpoints_only=True,
            )
            answer_accepted(resp, accepted, code_id)
            resp.set_header("Preference-Applied", "respond-async")
            return
        version = pinned_version(req)
        result = self._runs.run(
            code_id,
            run_request(req),
            endpoints_only=True,
            version=version,
            authorize=may_pin(self._access, req) if version is not None else None,
        )
        if answer_failure(resp, result):
            return
        answer_with_outcome(resp, result.outcome)


for resource in (Endpoint, ActionEndpoint):
    for method in ANY_METHOD:
        setattr(resource, f"on_{method}", resource.handle)
