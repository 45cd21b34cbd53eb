"""``/code`` and ``/code/{code_id}`` (and their ``/admin`` twins)."""

from __future__ import annotations

import dataclasses

import falcon

from codeactions_core.errors import InvalidInput
from codeactions_core.services.access import AccessService, Need
from codeactions_core.services.codes import MAX_SOURCE_BYTES, CodeInput, CodeService
from codeactions_core.web.requests import (
    JSON_BODY_LIMIT,
    decode_text,
    first_param,
    is_json,
    json_object,
    read_body,
)

CODE_FIELDS = tuple(f.name for f in dataclasses.fields(CodeInput))


def read_code_input(req: falcon.Request, *, source_required_in_json: bool) -> CodeInput:
    """Code fields from the query string, overridden by a JSON object body when sent.

    Any other body is the raw source text, whatever its content type.
    """
    data = CodeInput(**{name: first_param(req, name) for name in CODE_FIELDS if name != "source"})
    if is_json(req):
        body = read_body(req, JSON_BODY_LIMIT, "JSON body")
        if not body.strip():
            return data
        document = json_object(req, body)
        if source_required_in_json and "source" not in document:
            raise InvalidInput('JSON body must be an object holding "source" (the code text)')
        for name in CODE_FIELDS:
            if name in document:
                setattr(data, name, document[name])
        return data
    data.source = decode_text(read_body(req, MAX_SOURCE_BYTES, "source"), "source")
    return data


def require_project(access: AccessService, req: falcon.Request, project: object, need: Need) -> None:
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
        data = read_code_input(req, source_required_in_json=True)
        require_project(self._access, req, data.project_uuid, Need.WRITE)
        code = self._codes.create(data)
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
        code = self._codes.update(code_id, read_code_input(req, source_required_in_json=False))
        resp.media = code.to_json()

    on_patch_admin = on_patch

    def on_delete(self, req: falcon.Request, resp: falcon.Response, code_id: str) -> None:
        stored = self._codes.get(code_id)
        self._access.require(req.context.identity, stored.project_uuid, Need.WRITE)
        self._codes.delete(code_id)
        resp.status = falcon.HTTP_200
        resp.text = ""
        resp.content_type = falcon.MEDIA_TEXT
