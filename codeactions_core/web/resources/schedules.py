"""``/code/{code_id}/schedules`` and ``/flows/{flow_id}/schedules`` (and ``/{schedule_id}``).

Reading schedules needs what reading their code or flow needs (viewer); creating and
deleting them is an edit (moderator).
"""

from __future__ import annotations

import logging

import falcon

from codeactions_core.scheduling.model import TargetType
from codeactions_core.services.access import AccessService, Need
from codeactions_core.services.codes import CodeService
from codeactions_core.services.flows import FlowService
from codeactions_core.services.schedules import ScheduleService
from codeactions_core.web.resources.flows import actor, body_of
from codeactions_core.wiring import Services

log = logging.getLogger(__name__)


class ScheduleResource:
    def __init__(
        self,
        schedules: ScheduleService,
        codes: CodeService,
        flows: FlowService,
        access: AccessService,
        target_type: TargetType,
    ) -> None:
        self._schedules = schedules
        self._codes = codes
        self._flows = flows
        self._access = access
        self._type = target_type

    def _target(self, req: falcon.Request, ids: dict[str, str], need: Need) -> tuple[str, str]:
        """The code's or flow's id and project, once the caller may ``need`` on it."""
        if self._type is TargetType.CODE:
            code = self._codes.get(ids["code_id"])
            target, project = code.id, code.project_uuid
        else:
            flow = self._flows.get_flow(ids["flow_id"])
            target, project = flow.id, flow.project_uuid
        self._access.require(req.context.identity, project, need)
        return target, project


class ScheduleCollection(ScheduleResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, **ids: str) -> None:
        target, _ = self._target(req, ids, Need.READ)
        resp.media = [schedule.to_json() for schedule in self._schedules.list(self._type, target)]

    def on_post(self, req: falcon.Request, resp: falcon.Response, **ids: str) -> None:
        target, project = self._target(req, ids, Need.WRITE)
        data = body_of(req)
        author = actor(req.context.identity)
        if self._type is TargetType.CODE:
            schedule = self._schedules.create_for_code(self._codes.get(target), data, author)
        else:
            if data.get("version") is not None:
                self._flows.get_version(target, data["version"])  # 400/404 when unknown
            schedule = self._schedules.create_for_flow(target, project, data, author)
        resp.status = falcon.HTTP_201
        resp.media = schedule.to_json()


class ScheduleItem(ScheduleResource):
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, schedule_id: str, **ids: str
    ) -> None:
        target, _ = self._target(req, ids, Need.READ)
        schedule = self._schedules.get(self._type, target, schedule_id)
        firings = self._schedules.firings(schedule)
        resp.media = {**schedule.to_json(), "firings": [firing.to_json() for firing in firings]}

    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, schedule_id: str, **ids: str
    ) -> None:
        target, _ = self._target(req, ids, Need.WRITE)
        resp.media = self._schedules.delete(self._type, target, schedule_id).to_json()


def add_schedule_routes(app: falcon.App, services: Services) -> None:
    """The routes, when the store keeps schedules (a store plugin older than them does not)."""
    if getattr(services.store, "schedules", None) is None:
        log.warning(
            "the %s store keeps no schedules: /code/{id}/schedules is off", services.store.kind
        )
        return
    schedules = ScheduleService(services.store.schedules, services.codes)
    for prefix, target_type in (
        ("/code/{code_id}", TargetType.CODE),
        ("/flows/{flow_id}", TargetType.FLOW),
    ):
        parts = (schedules, services.codes, services.flows, services.access, target_type)
        app.add_route(f"{prefix}/schedules", ScheduleCollection(*parts))
        app.add_route(f"{prefix}/schedules/{{schedule_id}}", ScheduleItem(*parts))
