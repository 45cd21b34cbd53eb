"""``/code`` and ``/code/{code_id}`` (and their ``/admin`` twins)."""

from __future__ import annotations

import dataclasses
from typing import Any

import falcon

from codeactions_core.auth import Identity, IdentityKind
from codeactions_core.services.access import AccessService, Need
from codeactions_core.services.codes import MAX_SOURCE_BYTES, CodeInput, CodeService
from codeactions_core.web.requests import (
    JSON_BODY_LIMIT,
    MalformedJson,
    decode_text,
    first_param,
    is_json,
    parse_json,
    read_body,
)

CODE_FIELDS = tuple(f.name for f in dataclasses.fields(CodeInput))


def read_code_input(req: falcon.Request, *, creating: bool) -> tuple[CodeInput, frozenset[str]]:
    """Code fields from the query string, overridden by a JSON body form; the fields that form gave.

    The JSON form is an object holding ``source`` sent with a JSON content type (on
    update also an object of code fields only, e.g. ``{"timeout": 30}``). Any other
    body is the raw source text, whatever its content type, as the old service stored it.
    """
    data = CodeInput(**{name: first_param(req, name) for name in CODE_FIELDS if name != "source"})
    body = read_body(req, JSON_BODY_LIMIT if is_json(req) else MAX_SOURCE_BYTES, "source")
    if not body.strip():
        return data, frozenset()
    document = json_form(body, creating=creating) if is_json(req) else None
    if document is None:
        data.source = decode_text(body, "source")
        return data, frozenset()
    for name in CODE_FIELDS:
        if name in document:
            setattr(data, name, document[name])
    return data, frozenset(document) & frozenset(CODE_FIELDS)


def json_form(body: bytes, *, creating: bool) -> dict[str, Any] | None:
    """The JSON body form of a code, or None when the body is raw source (not JSON, or JSON
    that is not the form). JSON too hostile to read (nesting, huge numbers, lone surrogates)
    is refused with a 400 naming the problem, whatever it was meant to be."""
    try:
        document = parse_json(body.decode("utf-8"))
    except (UnicodeDecodeError, MalformedJson):
        return None
    if not isinstance(document, dict):
        return None
    if "source" in document or (not creating and document and set(document) <= set(CODE_FIELDS)):
        return document
    return None


def actor(identity: Identity) -> str:
    """Who made a change, as a code version records it: an email, or the identity's kind."""
    if identity.kind is IdentityKind.USER:
        return identity.email or "user"
    return str(identity.kind)


def require_project(
    access: AccessService, req: falcon.Request, project: object, need: Need
) -> None:
    """Check access when a project was named; a missing one is the use case's 400 to give."""
    if isinstance(project, str) and project.strip():
        access.require(req.context.identity, project.strip(), need)


class CodeCollection:
    def __init__(self, codes: CodeService, access: AccessService) -> None:
        self._codes = codes
        self._access = access

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        project = first_param(req, "project_uuid")
        require_project(self._access, req, project, Need.READ)
        codes = self._codes.list(project, first_param(req, "code_type"))
        resp.media = [code.to_json() for code in codes]

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data, _ = read_code_input(req, creating=True)
        require_project(self._access, req, data.project_uuid, Need.WRITE)
        code = self._codes.create(data, author=actor(req.context.identity))
        resp.status = falcon.HTTP_201
        resp.media = code.to_json()

    on_post_admin = on_post


class CodeItem:
    def __init__(self, codes: CodeService, access: AccessService) -> None:
        self._codes = codes
        self._access = access

    def on_get(self, req: falcon.Request, resp: falcon.Response, code_id: str) -> None:
        code = self._codes.get(code_id)
        self._access.require(req.context.identity, code.project_uuid, Need.READ)
        resp.media = code.to_json()

    def on_patch(self, req: falcon.Request, resp: falcon.Response, code_id: str) -> None:
        stored = self._codes.get(code_id)
        self._access.require(req.context.identity, stored.project_uuid, Need.WRITE)
        data, from_json = read_code_input(req, creating=False)
        # type and language in the query are checked, not applied, as the old service did
        # (its clients send a fixed type=endpoint&language=python on every update).
        self._codes.check_kind(data.type, data.language)
        data.type = data.type if "type" in from_json else None
        data.language = data.language if "language" in from_json else None
        code = self._codes.update(stored, data, author=actor(req.context.identity))
        resp.media = code.to_json()

    on_patch_admin = on_patch

    def on_delete(self, req: falcon.Request, resp: falcon.Response, code_id: str) -> None:
        stored = self._codes.get(code_id)
        self._access.require(req.context.identity, stored.project_uuid, Need.WRITE)
        self._codes.delete(stored)
        resp.status = falcon.HTTP_200
        resp.text = ""
        resp.content_type = falcon.MEDIA_TEXT
