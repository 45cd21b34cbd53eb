"""``/projects``: projects and permissions over HTTP, for deployments without a broker.

The same rules as the RabbitMQ events (``ProjectService``); only the service
token (or an internal user) may call them.
"""

from __future__ import annotations

import falcon

from codeactions_core.errors import InvalidInput, NotFound
from codeactions_core.services.access import AccessService
from codeactions_core.services.projects import ProjectService
from codeactions_core.web.requests import JSON_BODY_LIMIT, json_object, read_body


class ProjectsResource:
    def __init__(self, projects: ProjectService, access: AccessService) -> None:
        self._projects = projects
        self._access = access

    def _trusted(self, req: falcon.Request) -> None:
        self._access.require_trusted(req.context.identity)


class ProjectItem(ProjectsResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, project_uuid: str) -> None:
        self._trusted(req)
        resp.media = self._projects.get(project_uuid).to_json()

    def on_put(self, req: falcon.Request, resp: falcon.Response, project_uuid: str) -> None:
        """Create or update the project and a permission for each of its authorizations."""
        self._trusted(req)
        document = json_object(req, read_body(req, JSON_BODY_LIMIT, "JSON body"))
        if document.get("uuid", project_uuid) != project_uuid:
            raise InvalidInput("the body's uuid differs from the project in the path")
        resp.media = self._projects.apply_project(document, project_uuid).to_json()


class PermissionCollection(ProjectsResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, project_uuid: str) -> None:
        self._trusted(req)
        resp.media = [
            permission.to_json() for permission in self._projects.permissions(project_uuid)
        ]


class PermissionItem(ProjectsResource):
    def on_put(
        self, req: falcon.Request, resp: falcon.Response, project_uuid: str, email: str
    ) -> None:
        """Create the permission or change its role: ``{"role": 1|2|3}``."""
        self._trusted(req)
        document = json_object(req, read_body(req, JSON_BODY_LIMIT, "JSON body"))
        resp.media = self._projects.set_permission(
            project_uuid, email, document.get("role")
        ).to_json()

    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, project_uuid: str, email: str
    ) -> None:
        self._trusted(req)
        if not self._projects.remove_permission(project_uuid, email):
            raise NotFound(f"{email} has no permission on project {project_uuid!r}")
        resp.media = {}
