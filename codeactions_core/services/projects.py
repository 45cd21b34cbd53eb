"""Projects and the permissions users hold on them: one set of rules for the
RabbitMQ events (COMPAT.md "Events") and the HTTP API that stands in for them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from codeactions_core.errors import InvalidInput, NotFound
from codeactions_core.model import Authorization, Project, Role, UserPermission
from codeactions_core.store import PermissionRepository, ProjectRepository

MAX_TEXT = 255


def text(document: Mapping[str, Any], *names: str) -> str:
    """The first of ``names`` present in ``document`` as a non-empty string (<= 255 chars)."""
    for name in names:
        value = document.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"{name} must be a non-empty string")
        if "\x00" in value:
            raise InvalidInput(f"{name} contains a NUL character")
        if len(value) > MAX_TEXT:
            raise InvalidInput(f"{name} is longer than {MAX_TEXT} characters")
        return value.strip()
    raise InvalidInput(f"{names[0]} is required")


def role(value: Any) -> Role:
    """A role as 1, 2, 3 or their names; numeric strings too (the old service sent strings)."""
    if isinstance(value, str) and value.strip().upper() in Role.__members__:
        return Role[value.strip().upper()]
    if isinstance(value, float) and not value.is_integer():
        value = None  # 2.5 is no role
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"role must be 1 (viewer), 2 (contributor) or 3 (moderator), got {value!r}"
        ) from None
    if isinstance(value, bool) or number not in {r.value for r in Role}:
        raise InvalidInput(
            f"role must be 1 (viewer), 2 (contributor) or 3 (moderator), got {value!r}"
        )
    return Role(number)


class ProjectService:
    def __init__(self, projects: ProjectRepository, permissions: PermissionRepository) -> None:
        self._projects = projects
        self._permissions = permissions

    def get(self, project_uuid: str) -> Project:
        project = self._projects.get(project_uuid)
        if project is None:
            raise NotFound(f"project {project_uuid!r} not found")
        return project

    def permissions(self, project_uuid: str) -> list[UserPermission]:
        return self._permissions.list_by_project(project_uuid)

    def apply_project(
        self, document: Mapping[str, Any], project_uuid: str | None = None
    ) -> Project:
        """A project event: create or update the project, and a permission per authorization.

        Repeating it changes nothing; fields other than uuid, name and
        authorizations are ignored. Permissions not listed are left alone.
        """
        if not isinstance(document, Mapping):
            raise InvalidInput(f"a project must be a JSON object, got {type(document).__name__}")
        uuid = project_uuid or text(document, "uuid")
        name = text(document, "name")
        listed = document.get("authorizations") or []
        if not isinstance(listed, list):
            raise InvalidInput("authorizations must be a list")
        authorizations = []
        for entry in listed:
            if not isinstance(entry, Mapping):
                raise InvalidInput("each authorization must be an object with user_email and role")
            authorizations.append(
                Authorization(text(entry, "user_email", "email", "user"), role(entry.get("role")))
            )
        project = self._projects.upsert(uuid, name, authorizations)
        for authorization in authorizations:
            self._permissions.upsert(uuid, authorization.user_email, authorization.role)
        return project

    def apply_permission(self, document: Mapping[str, Any]) -> UserPermission | None:
        """Apply a permission event.

        ``{"action": "create"|"update"|"delete", "project", "user", "role"}``: update creates
        a permission that is absent; deleting an absent one is fine.
        """
        if not isinstance(document, Mapping):
            raise InvalidInput(
                f"a permission event must be a JSON object, got {type(document).__name__}"
            )
        action = document.get("action")
        project = text(document, "project", "project_uuid")
        email = text(document, "user", "user_email", "email")
        if action in ("create", "update"):
            return self.set_permission(project, email, document.get("role"))
        if action == "delete":
            self.remove_permission(project, email)
            return None
        raise InvalidInput(f"action must be create, update or delete, got {action!r}")

    def set_permission(self, project_uuid: str, email: str, value: Any) -> UserPermission:
        return self._permissions.upsert(project_uuid, email, role(value))

    def remove_permission(self, project_uuid: str, email: str) -> bool:
        return self._permissions.delete(project_uuid, email)
