"""``/``, ``/healthz`` (liveness) and ``/health`` (dependencies)."""

from __future__ import annotations

import falcon

from codeactions_core.services.access import AccessService
from codeactions_core.services.health import HealthService, public_report
from codeactions_core.web.middleware import PUBLIC


class Liveness:
    """Cheap: answers as long as the process serves requests."""

    auth = PUBLIC

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class Health:
    """Reports each dependency; 503 when any is unhealthy. Process ids and file paths only
    to a caller with valid credentials."""

    auth = PUBLIC

    def __init__(self, health: HealthService, access: AccessService) -> None:
        self._health = health
        self._access = access

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        report = self._health.report()
        resp.status = falcon.HTTP_200 if report["status"] == "healthy" else falcon.HTTP_503
        headers = {name.lower(): value for name, value in req.headers.items()}
        resp.media = report if self._access.authenticated(headers) else public_report(report)
