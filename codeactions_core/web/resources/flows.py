"""``/flows``: flow definitions, their versions, and executions.

Access by project role: viewers read, contributors execute (and cancel),
moderators create, edit, publish, roll back and deactivate.
"""

from __future__ import annotations

from typing import Any

import falcon

from codeactions_core.auth import Identity, IdentityKind
from codeactions_core.services.access import AccessService, Need
from codeactions_core.services.flows import FlowService
from codeactions_core.web.requests import (
    JSON_BODY_LIMIT,
    first_param,
    first_params,
    json_object,
    read_body,
)
from codeactions_core.web.resources.codes import require_project

WAIT_WORDS = {"1", "true", "yes"}


def actor(identity: Identity) -> str:
    """Who did it, as recorded in ``created_by`` and ``executed_by``."""
    if identity.kind is IdentityKind.USER:
        return identity.email or "user"
    return str(identity.kind)


def body_of(req: falcon.Request) -> dict[str, Any]:
    """The JSON object a request sent (an empty body is an empty object)."""
    data = read_body(req, JSON_BODY_LIMIT, "JSON body")
    return json_object(req, data) if data.strip() else {}


class FlowResource:
    """Base: the use cases and the access service; checks access on a flow's project."""

    def __init__(self, flows: FlowService, access: AccessService) -> None:
        self._flows = flows
        self._access = access

    def _require(self, req: falcon.Request, flow_id: str, need: Need) -> None:
        flow = self._flows.get_flow(flow_id)
        self._access.require(req.context.identity, flow.project_uuid, need)


class FlowCollection(FlowResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        project = first_param(req, "project_uuid")
        require_project(self._access, req, project, Need.READ)
        active_only = (first_param(req, "active") or "").lower() in WAIT_WORDS
        resp.media = [
            flow.to_json() for flow in self._flows.list_flows(project, active_only=active_only)
        ]

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = body_of(req)
        require_project(self._access, req, data.get("project_uuid"), Need.WRITE)
        resp.status = falcon.HTTP_201
        resp.media = self._flows.create_flow(data, actor(req.context.identity)).to_json()


class FlowItem(FlowResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, flow_id: str) -> None:
        self._require(req, flow_id, Need.READ)
        resp.media = self._flows.get_flow(flow_id).to_json()

    def on_patch(self, req: falcon.Request, resp: falcon.Response, flow_id: str) -> None:
        self._require(req, flow_id, Need.WRITE)
        resp.media = self._flows.update_flow(flow_id, body_of(req)).to_json()


class VersionCollection(FlowResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, flow_id: str) -> None:
        self._require(req, flow_id, Need.READ)
        resp.media = [version.to_json() for version in self._flows.list_versions(flow_id)]

    def on_post(self, req: falcon.Request, resp: falcon.Response, flow_id: str) -> None:
        self._require(req, flow_id, Need.WRITE)
        version = self._flows.create_version(flow_id, body_of(req), actor(req.context.identity))
        resp.status = falcon.HTTP_201
        resp.media = version.to_json()


class VersionItem(FlowResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, flow_id: str, number: str) -> None:
        self._require(req, flow_id, Need.READ)
        resp.media = self._flows.get_version(flow_id, number).to_json()

    def on_patch(
        self, req: falcon.Request, resp: falcon.Response, flow_id: str, number: str
    ) -> None:
        self._require(req, flow_id, Need.WRITE)
        resp.media = self._flows.update_draft(flow_id, number, body_of(req)).to_json()


class VersionPublish(FlowResource):
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, flow_id: str, number: str
    ) -> None:
        self._require(req, flow_id, Need.WRITE)
        resp.media = self._flows.publish(flow_id, number).to_json()


class VersionRollback(FlowResource):
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, flow_id: str, number: str
    ) -> None:
        self._require(req, flow_id, Need.WRITE)
        resp.media = self._flows.rollback(flow_id, number).to_json()


class VersionDiff(FlowResource):
    """``GET /flows/{id}/diff?from=1&to=2``."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, flow_id: str) -> None:
        self._require(req, flow_id, Need.READ)
        resp.media = self._flows.diff(flow_id, first_param(req, "from"), first_param(req, "to"))


class ExecutionCollection(FlowResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, flow_id: str) -> None:
        self._require(req, flow_id, Need.READ)
        executions = self._flows.list_executions(flow_id, first_params(req))
        resp.media = [execution.to_json() for execution in executions]

    def on_post(self, req: falcon.Request, resp: falcon.Response, flow_id: str) -> None:
        """Start an execution: 202 at once, or 200 with it finished when ``?wait=true`` and
        it finishes within FLOW_WAIT_SECONDS."""
        self._require(req, flow_id, Need.EXECUTE)
        execution = self._flows.start(flow_id, body_of(req), actor(req.context.identity))
        if (first_param(req, "wait") or "").lower() in WAIT_WORDS:
            execution = self._flows.wait_for(execution)
        resp.status = falcon.HTTP_200 if execution.status.terminal else falcon.HTTP_202
        resp.set_header("Location", f"/flows/{flow_id}/executions/{execution.id}")
        resp.media = execution.to_json()


class ExecutionItem(FlowResource):
    """An execution: read-only history (no PATCH, no DELETE)."""

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, flow_id: str, execution_id: str
    ) -> None:
        self._require(req, flow_id, Need.READ)
        resp.media = self._flows.get_execution(flow_id, execution_id).to_json()


class ExecutionCancel(FlowResource):
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, flow_id: str, execution_id: str
    ) -> None:
        """200 with the execution cancelled, or 202 while the step it runs finishes first."""
        self._require(req, flow_id, Need.EXECUTE)
        execution = self._flows.cancel(flow_id, execution_id)
        resp.status = falcon.HTTP_200 if execution.status.terminal else falcon.HTTP_202
        resp.media = execution.to_json()


def add_flow_routes(app: falcon.App, flows: FlowService, access: AccessService) -> None:
    routes = {
        "/flows": FlowCollection,
        "/flows/{flow_id}": FlowItem,
        "/flows/{flow_id}/versions": VersionCollection,
        "/flows/{flow_id}/versions/{number}": VersionItem,
        "/flows/{flow_id}/versions/{number}/publish": VersionPublish,
        "/flows/{flow_id}/versions/{number}/rollback": VersionRollback,
        "/flows/{flow_id}/diff": VersionDiff,
        "/flows/{flow_id}/executions": ExecutionCollection,
        "/flows/{flow_id}/executions/{execution_id}": ExecutionItem,
        "/flows/{flow_id}/executions/{execution_id}/cancel": ExecutionCancel,
    }
    for template, resource in routes.items():
        app.add_route(template, resource(flows, access))
