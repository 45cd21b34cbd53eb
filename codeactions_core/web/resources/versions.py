"""``/code/{code_id}/versions``, ``/versions/{number}``, ``.../restore`` and ``/diff``.

Reading versions needs what reading the code needs (viewer); restoring one is an
edit of the code (moderator).
"""

from __future__ import annotations

import logging

import falcon

from codeactions_core.model import Code
from codeactions_core.services.access import AccessService, Need
from codeactions_core.services.codes import CodeService
from codeactions_core.services.versions import VersionService
from codeactions_core.web.requests import first_param
from codeactions_core.web.resources.flows import actor, body_of
from codeactions_core.wiring import Services

log = logging.getLogger(__name__)


class VersionResource:
    def __init__(self, codes: CodeService, versions: VersionService, access: AccessService) -> None:
        self._codes = codes
        self._versions = versions
        self._access = access

    def _code(self, req: falcon.Request, code_id: str, need: Need) -> Code:
        code = self._codes.get(code_id)
        self._access.require(req.context.identity, code.project_uuid, need)
        return code


class VersionCollection(VersionResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, code_id: str) -> None:
        code = self._code(req, code_id, Need.READ)
        resp.media = [version.to_json(with_source=False) for version in self._versions.list(code)]


class VersionItem(VersionResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, code_id: str, number: str) -> None:
        code = self._code(req, code_id, Need.READ)
        resp.media = self._versions.get(code, number).to_json()


class VersionRestore(VersionResource):
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, code_id: str, number: str
    ) -> None:
        code = self._code(req, code_id, Need.WRITE)
        note = first_param(req, "note")
        if note is None:
            note = body_of(req).get("note")
        resp.media = self._codes.restore(
            code.id, number, actor(req.context.identity), note
        ).to_json()


class VersionDiff(VersionResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, code_id: str) -> None:
        code = self._code(req, code_id, Need.READ)
        resp.media = self._versions.diff(code, first_param(req, "from"), first_param(req, "to"))


def add_version_routes(app: falcon.App, services: Services) -> None:
    """The routes, when the store keeps versions (a store plugin older than them does not)."""
    if getattr(services.store, "versions", None) is None:
        log.warning(
            "the %s store keeps no code versions: /code/{id}/versions is off", services.store.kind
        )
        return
    versions = VersionService(services.codes, services.store.versions)
    parts = (services.codes, versions, services.access)
    app.add_route("/code/{code_id}/versions", VersionCollection(*parts))
    app.add_route("/code/{code_id}/versions/{number}", VersionItem(*parts))
    app.add_route("/code/{code_id}/versions/{number}/restore", VersionRestore(*parts))
    app.add_route("/code/{code_id}/diff", VersionDiff(*parts))
