"""``/``, ``/healthz`` and ``/health/live`` (liveness), ``/health/ready`` (readiness: can this
process serve runs now) and ``/health`` (every dependency)."""

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


class Readiness:
    """200 when this process can serve runs (``degraded`` when an optional dependency is
    down), 503 when it cannot or is shutting down: the load balancer's signal."""

    auth = PUBLIC

    def __init__(self, health: HealthService) -> None:
        self._health = health

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        ready, body = self._health.readiness()
        resp.status = falcon.HTTP_200 if ready else falcon.HTTP_503
        resp.media = public_report(body)


class Health:
    """Reports each dependency: 200 when healthy or only optional ones fail (``degraded``),
    503 when a required one does. Process ids and file paths only to a caller with valid
    credentials."""

    auth = PUBLIC

    def __init__(self, health: HealthService, access: AccessService) -> None:
        self._health = health
        self._access = access

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        report = self._health.report()
        resp.status = falcon.HTTP_503 if report["status"] == "unhealthy" else falcon.HTTP_200
        headers = {name.lower(): value for name, value in req.headers.items()}
        resp.media = report if self._access.authenticated(headers) else public_report(report)
