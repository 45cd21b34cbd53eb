"""Who may do what: the one place that decides access to every management route.

Identities come from the auth-provider plugins; a user's rights on a project
come from their permission (roles: 1 viewer, 2 contributor, 3 moderator).
With no provider configured at all the deployment is open (``serve`` warns).
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Mapping, Sequence

from codeactions_core.auth import ANONYMOUS, AuthProvider, Identity, IdentityKind
from codeactions_core.errors import Forbidden, Unauthenticated, Unavailable
from codeactions_core.model import Role
from codeactions_core.store import PermissionRepository


class Need(enum.IntEnum):
    """The least role an action needs on the project it touches."""

    READ = Role.VIEWER
    EXECUTE = Role.CONTRIBUTOR
    WRITE = Role.MODERATOR


class AccessService:
    def __init__(
        self,
        providers: Sequence[AuthProvider],
        permissions: PermissionRepository,
        *,
        metrics_token: str = "",
    ) -> None:
        self._providers = list(providers)
        self._permissions = permissions
        self._metrics_token = metrics_token.encode()

    @property
    def open(self) -> bool:
        """No auth is configured: every management route is open."""
        return not self._providers

    def identify(self, headers: Mapping[str, str]) -> Identity:
        """The caller (``headers`` keyed in lower case); Unauthenticated when none can be told."""
        if self.open:
            return ANONYMOUS
        for provider in self._providers:
            identity = provider.authenticate(headers)
            if identity is not None:
                return identity
        raise Unauthenticated(
            "this route needs credentials: Authorization: "
            + " or ".join(sorted({scheme_of(provider) for provider in self._providers}))
        )

    def privileged(self, identity: Identity) -> bool:
        """Allowed everywhere: an open deployment, the service token, an internal user."""
        return self.open or identity.is_service or identity.internal

    def require(self, identity: Identity, project_uuid: str | None, need: Need) -> None:
        """Allow, or raise Forbidden: ``need`` on ``project_uuid`` (None: a project nobody owns)."""
        if self.privileged(identity):
            return
        if identity.kind is not IdentityKind.USER:
            raise Unauthenticated("this route needs credentials")
        permission = self._permissions.get(project_uuid, identity.email) if project_uuid else None
        if permission is None:
            raise Forbidden(
                f"{identity.email or 'this user'} has no permission on project {project_uuid!r}"
            )
        if permission.role < need:
            raise Forbidden(
                f"{identity.email} is a {permission.role.name.lower()} "
                f"of project {project_uuid!r}; this needs a {Role(need).name.lower()}"
            )

    def require_trusted(self, identity: Identity) -> None:
        """Only the service itself (or an internal user): managing projects and permissions."""
        if self.privileged(identity):
            return
        raise Forbidden(
            "only the service token (or an internal user) may manage projects and permissions"
        )

    def require_run(self, identity: Identity, project_uuid: str) -> None:
        """``POST /run``: the service token, an internal user, or a contributor of the project."""
        self.require(identity, project_uuid, Need.EXECUTE)

    def require_metrics(self, headers: Mapping[str, str]) -> None:
        """``/metrics``: METRICS_TOKEN, the service token or an internal user once any auth (or a
        metrics token) is configured; open otherwise. ``headers`` keyed in lower case."""
        if self._metrics_token:
            scheme, _, presented = headers.get("authorization", "").strip().partition(" ")
            if scheme.lower() in ("bearer", "token") and hmac.compare_digest(
                presented.strip().encode(), self._metrics_token
            ):
                return
            if self.open:
                raise Unauthenticated(
                    "/metrics needs the header Authorization: Bearer <metrics token>"
                )
        if self.open:
            return
        if not self.privileged(self.identify(headers)):
            raise Forbidden(
                "only the service token, the metrics token or an internal user may read metrics"
            )

    def authenticated(self, headers: Mapping[str, str]) -> Identity | None:
        """The caller when it presented valid credentials; None for no credentials or bad ones."""
        if self.open or not headers.get("authorization"):
            return None
        try:
            return self.identify(headers)
        except (Unauthenticated, Unavailable):
            return None


def scheme_of(provider: AuthProvider) -> str:
    return getattr(provider, "scheme", provider.name)
