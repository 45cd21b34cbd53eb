"""The service's own routes: liveness and health, metrics, and this document."""

from __future__ import annotations

from codeactions_core.web.openapi.builders import Paths, answer, op

LIVENESS = op("health", "liveness", {"200": answer("alive", {"type": "object"})}, public=True)

PATHS: Paths = {
    "/": {"get": LIVENESS},
    "/healthz": {"get": LIVENESS},
    "/health": {
        "get": op(
            "health",
            "every dependency's state",
            {
                "200": answer(
                    "healthy, or degraded (an optional dependency is down)", {"type": "object"}
                ),
                "503": answer("a required dependency is unhealthy", {"type": "object"}),
            },
            public=True,
        )
    },
    "/health/live": {
        "get": op(
            "health",
            "liveness: the process answers",
            {"200": answer("alive", {"type": "object"})},
            public=True,
        )
    },
    "/health/ready": {
        "get": op(
            "health",
            "readiness: this process can serve runs",
            {
                "200": answer(
                    "ready, or degraded (an optional dependency is down)", {"type": "object"}
                ),
                "503": answer(
                    "not ready: a required dependency is down, the disk is (nearly) full, "
                    "no runtime is ready, or the server is shutting down",
                    {"type": "object"},
                ),
            },
            public=True,
        )
    },
    "/metrics": {
        "get": op(
            "health",
            "Prometheus exposition",
            {"200": answer("metrics", {"type": "string"}, "text/plain")},
            public=True,
        )
    },
    "/openapi.json": {
        "get": op(
            "docs",
            "this document",
            {"200": answer("OpenAPI 3.1", {"type": "object"})},
            public=True,
        )
    },
    "/docs": {
        "get": op(
            "docs",
            "a browsable page of this document",
            {"200": answer("HTML", {"type": "string"}, "text/html")},
            public=True,
        )
    },
}
