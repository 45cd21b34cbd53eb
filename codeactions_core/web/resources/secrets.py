"""``/projects/{uuid}/secrets``: a project's secrets over HTTP. Values go in, never out."""

from __future__ import annotations

import json

import falcon

from codeactions_core.errors import InvalidInput
from codeactions_core.services.access import AccessService, Need
from codeactions_core.services.secrets import MAX_VALUE, SecretService, check_name
from codeactions_core.web.requests import read_body

BODY_LIMIT = MAX_VALUE * 8
"""Bodies up to this size are read (a JSON-escaped value may be six times its own size)."""
SLASHED_NAME = r"^/projects/(?P<project_uuid>[^/]+)/secrets/(?P<name>.+)$"
"""A name with '/' matches no route; this sink answers 400 naming the problem, not 404."""


def secret_value(req: falcon.Request) -> str:
    """``{"value": "..."}`` as JSON, or the raw body (UTF-8) with any other content type."""
    body = read_body(req, BODY_LIMIT, "the secret's body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the secret's value must be UTF-8 text") from None
    if (req.content_type or "").split(";")[0].strip().lower() == "application/json":
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise InvalidInput(f"the body is not valid JSON: {exc}") from None
        if not isinstance(document, dict) or not isinstance(document.get("value"), str):
            raise InvalidInput('a JSON body must be an object {"value": "<the secret>"}')
        text = document["value"]
    return text


class SecretsResource:
    def __init__(self, secrets: SecretService, access: AccessService) -> None:
        self._secrets = secrets
        self._access = access


class SecretCollection(SecretsResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, project_uuid: str) -> None:
        """Names and timestamps, never a value."""
        self._access.require(req.context.identity, project_uuid, Need.READ)
        resp.media = [secret.to_json() for secret in self._secrets.list(project_uuid)]


class SecretItem(SecretsResource):
    def on_put(
        self, req: falcon.Request, resp: falcon.Response, project_uuid: str, name: str
    ) -> None:
        """Create or replace the secret (a moderator of the project)."""
        self._access.require(req.context.identity, project_uuid, Need.WRITE)
        check_name(name)
        resp.media = self._secrets.put(project_uuid, name, secret_value(req)).to_json()

    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, project_uuid: str, name: str
    ) -> None:
        self._access.require(req.context.identity, project_uuid, Need.WRITE)
        self._secrets.delete(project_uuid, name)
        resp.media = {}


def refuse_slashed_name(
    req: falcon.Request, resp: falcon.Response, project_uuid: str, name: str
) -> None:
    check_name(name)  # raises: the name holds a '/'
    raise falcon.HTTPNotFound()  # pragma: no cover - a name without '/' matches the route


def add_secret_routes(app: falcon.App, secrets: SecretService, access: AccessService) -> None:
    app.add_route("/projects/{project_uuid}/secrets", SecretCollection(secrets, access))
    app.add_route("/projects/{project_uuid}/secrets/{name}", SecretItem(secrets, access))
    app.add_sink(refuse_slashed_name, SLASHED_NAME)
