"""``/``, ``/healthz`` (liveness) and ``/health`` (dependencies)."""

from __future__ import annotations

import falcon

from codeactions_core.services.health import HealthService
from codeactions_core.web.middleware import PUBLIC


class Liveness:
    """Cheap: answers as long as the process serves requests."""

    auth = PUBLIC

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class Health:
    """Reports each dependency; 503 when any is unhealthy."""

    auth = PUBLIC

    def __init__(self, health: HealthService) -> None:
        self._health = health

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        report = self._health.report()
        resp.status = falcon.HTTP_200 if report["status"] == "healthy" else falcon.HTTP_503
        resp.media = report
