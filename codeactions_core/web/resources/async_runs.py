"""Async runs over HTTP: the 202 answer, ``/coderun/{id}/async`` and the signing key routes.

``POST /run/{id}?async=true`` and ``/action/endpoint/{id}`` with ``Prefer: respond-async``
answer 202 at once; ``callback_url`` (a query parameter) asks for the finished run to be
POSTed there. ``async`` and ``callback_url`` are the server's on such requests: the code
does not get them among its parameters.
"""

from __future__ import annotations

import falcon

from codeactions_core.errors import InvalidInput
from codeactions_core.execution.runtime import RunRequest
from codeactions_core.services.access import AccessService, Need
from codeactions_core.services.async_runs import AsyncAccepted, AsyncRunService
from codeactions_core.services.history import HistoryService
from codeactions_core.settings.parsing import FALSE_WORDS, TRUE_WORDS
from codeactions_core.web.requests import first_param

CONTROL_PARAMS = ("async", "callback_url")


def asks_async(req: falcon.Request) -> bool:
    """``?async=true`` (or 1, yes...); 400 for a value that is neither true nor false."""
    raw = first_param(req, "async")
    if raw is None:
        return False
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS or word == "":
        return False
    raise InvalidInput(f"async must be true or false, got {raw!r}")


def prefers_async(req: falcon.Request) -> bool:
    """``Prefer: respond-async`` (RFC 7240), among other preferences or alone."""
    prefer = req.get_header("Prefer") or ""
    return any(
        part.split(";", 1)[0].split("=", 1)[0].strip().lower() == "respond-async"
        for part in prefer.split(",")
    )


def callback_url(req: falcon.Request) -> str:
    return (first_param(req, "callback_url") or "").strip()


def without_control_params(request: RunRequest) -> RunRequest:
    params = {k: v for k, v in request.params.items() if k not in CONTROL_PARAMS}
    return RunRequest(params=params, body=request.body, headers=request.headers)


def answer_accepted(resp: falcon.Response, accepted: AsyncAccepted, code_id: str) -> None:
    """202 with the run's id and where to read it."""
    location = f"/coderun/{accepted.run.id}"
    resp.status = falcon.HTTP_202
    resp.location = location
    resp.media = {
        "code_id": code_id,
        "run_id": accepted.run.id,
        "status": str(accepted.run.status),
        "location": location,
        "async": accepted.record.to_json(),
    }


class AsyncRunItem:
    """``GET /coderun/{run_id}/async``: attempts, redelivery, worker and callback of a run."""

    def __init__(
        self, async_runs: AsyncRunService, history: HistoryService, access: AccessService
    ) -> None:
        self._async_runs = async_runs
        self._history = history
        self._access = access

    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        run = self._history.get_run(run_id)
        self._access.require(req.context.identity, self._history.project_of(run.code_id), Need.READ)
        resp.media = self._async_runs.record(run.id).to_json()


class SigningKeyItem:
    """``/projects/{uuid}/signing-key``: GET tells whether there is one (never the key);
    POST (a moderator) makes a new one, replacing the old, and answers it: the only time
    it is shown."""

    def __init__(self, async_runs: AsyncRunService, access: AccessService) -> None:
        self._async_runs = async_runs
        self._access = access

    def on_get(self, req: falcon.Request, resp: falcon.Response, project_uuid: str) -> None:
        self._access.require(req.context.identity, project_uuid, Need.WRITE)
        key = self._async_runs.signing_key(project_uuid)
        resp.media = key.to_json()

    def on_post(self, req: falcon.Request, resp: falcon.Response, project_uuid: str) -> None:
        self._access.require(req.context.identity, project_uuid, Need.WRITE)
        key = self._async_runs.rotate_signing_key(project_uuid)
        resp.status = falcon.HTTP_201
        resp.media = {**key.to_json(), "signing_key": key.key}
        resp.set_header("Cache-Control", "no-store")
