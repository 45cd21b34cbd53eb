"""``/``, ``/healthz`` (liveness) and ``/health`` (dependencies)."""

from __future__ import annotations

import platform
import time

import falcon

from codeactions_core import __version__
from codeactions_core.model import rfc3339, utcnow
from codeactions_core.services import Services
from codeactions_core.web.middleware import PUBLIC

STARTED = time.monotonic()


def runtime_report(services: Services) -> dict[str, object]:
    """Each runtime's readiness and the sandbox protections in force (informational:
    a runtime this deployment does not use must not make it unhealthy)."""
    health = services.runtimes.health()
    protections = next((h.details for h in health.values() if h.ready and h.details), {})
    return {
        "runtimes": {language: {"ready": h.ready, "message": h.message} for language, h in health.items()},
        "sandbox": protections,
    }


class Liveness:
    """Cheap: answers as long as the process serves requests."""

    auth = PUBLIC

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class Health:
    """Reports each dependency; 503 when any is unhealthy."""

    auth = PUBLIC

    def __init__(self, services: Services) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        checks = {"database": self._check_database()}
        healthy = all(check["status"] == "healthy" for check in checks.values())
        resp.status = falcon.HTTP_200 if healthy else falcon.HTTP_503
        resp.media = {
            "status": "healthy" if healthy else "unhealthy",
            "timestamp": rfc3339(utcnow()),
            "uptime": round(time.monotonic() - STARTED, 3),
            "version": __version__,
            "environment": self._services.settings.environment,
            "system": {"python": platform.python_version(), "platform": platform.platform()},
            "services": checks,
            **runtime_report(self._services),
        }

    def _check_database(self) -> dict[str, object]:
        store = self._services.store
        started = time.perf_counter()
        try:
            store.ping()
            status, message = "healthy", f"{store.kind} reachable"
        except Exception as exc:  # any failure is a finding, not a crash
            status, message = "unhealthy", f"{store.kind}: {exc}"
        return {
            "status": status,
            "message": message,
            "latency": f"{(time.perf_counter() - started) * 1000:.2f}ms",
            "timestamp": rfc3339(utcnow()),
        }
