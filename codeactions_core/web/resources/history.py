"""``/coderun`` and ``/codelog``: what runs left behind, readable by the code's project."""

from __future__ import annotations

import falcon

from codeactions_core.errors import NotFound
from codeactions_core.services.access import AccessService, Need
from codeactions_core.services.history import HistoryService
from codeactions_core.web.requests import first_param


class HistoryResource:
    def __init__(self, history: HistoryService, access: AccessService) -> None:
        self._history = history
        self._access = access

    def _may_read(self, req: falcon.Request, code_id: str) -> None:
        identity = req.context.identity
        project = self._history.project_of(code_id)
        if project is None and not self._access.privileged(identity):
            raise NotFound(f"code {code_id!r} not found")
        self._access.require(identity, project, Need.READ)


class RunCollection(HistoryResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        code_id = first_param(req, "code_id")
        if code_id:
            self._may_read(req, code_id)
        runs = self._history.list_runs(
            code_id, first_param(req, "after"), first_param(req, "before")
        )
        resp.media = [run.to_json() for run in runs]


class RunItem(HistoryResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        run = self._history.get_run(run_id)
        self._may_read(req, run.code_id)
        resp.media = run.to_json()


class LogCollection(HistoryResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        run_id, code_id = first_param(req, "run_id"), first_param(req, "code_id")
        if run_id:
            self._may_read(req, self._history.get_run(run_id).code_id)
        elif code_id:
            self._may_read(req, code_id)
        page = self._history.list_logs(run_id, code_id, first_param(req, "page"))
        resp.media = {
            "data": [log.to_json() for log in page.items],
            "total": page.total,
            "page": page.page,
            "last_page": page.last_page,
        }


class LogItem(HistoryResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, log_id: str) -> None:
        log = self._history.get_log(log_id)
        self._may_read(req, log.code_id)
        resp.media = log.to_json()
