"""``/coderun`` and ``/codelog``: what runs left behind."""

from __future__ import annotations

import falcon

from codeactions_core.services.history import HistoryService
from codeactions_core.web.requests import first_param


class RunCollection:
    def __init__(self, history: HistoryService) -> None:
        self._history = history

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        runs = self._history.list_runs(
            first_param(req, "code_id"), first_param(req, "after"), first_param(req, "before")
        )
        resp.media = [run.to_json() for run in runs]


class RunItem:
    def __init__(self, history: HistoryService) -> None:
        self._history = history

    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        resp.media = self._history.get_run(run_id).to_json()


class LogCollection:
    def __init__(self, history: HistoryService) -> None:
        self._history = history

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        page = self._history.list_logs(
            first_param(req, "run_id"), first_param(req, "code_id"), first_param(req, "page")
        )
        resp.media = {
            "data": [log.to_json() for log in page.items],
            "total": page.total,
            "page": page.page,
            "last_page": page.last_page,
        }


class LogItem:
    def __init__(self, history: HistoryService) -> None:
        self._history = history

    def on_get(self, req: falcon.Request, resp: falcon.Response, log_id: str) -> None:
        resp.media = self._history.get_log(log_id).to_json()
