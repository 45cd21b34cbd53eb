"""The Falcon application factory."""

from __future__ import annotations

import falcon

from codeactions_core.plugins import load_settings
from codeactions_core.settings import Settings
from codeactions_core.web import errors
from codeactions_core.web.middleware import (
    Authenticate,
    RecordRequestMetrics,
    ReleaseStoreConnection,
)
from codeactions_core.web.resources.async_runs import AsyncRunItem, SigningKeyItem
from codeactions_core.web.resources.codes import CodeCollection, CodeItem
from codeactions_core.web.resources.docs import DocsPage, OpenApiDocument
from codeactions_core.web.resources.flows import add_flow_routes
from codeactions_core.web.resources.health import Health, Liveness, Readiness
from codeactions_core.web.resources.history import LogCollection, LogItem, RunCollection, RunItem
from codeactions_core.web.resources.metrics import MetricsExposition
from codeactions_core.web.resources.projects import (
    PermissionCollection,
    PermissionItem,
    ProjectItem,
)
from codeactions_core.web.resources.runs import ActionEndpoint, Endpoint, RunCode
from codeactions_core.web.resources.schedules import add_schedule_routes
from codeactions_core.web.resources.secrets import add_secret_routes
from codeactions_core.web.resources.versions import add_version_routes
from codeactions_core.wiring import Services, build_services


def create_app(settings: Settings | None = None, services: Services | None = None) -> falcon.App:
    """Build the API. Without ``services`` they are built from ``settings`` (or the environment)."""
    if services is None:
        services = build_services(settings or load_settings())
    app = falcon.App(
        middleware=[
            RecordRequestMetrics(services.metrics),
            ReleaseStoreConnection(services.store),
            Authenticate(services.access),
        ]
    )
    app.req_options.strip_url_path_trailing_slash = True
    errors.install(app)
    add_core_routes(app, services)
    services.plugins.hook.codeactions_add_routes(app=app, services=services)
    return app


def add_core_routes(app: falcon.App, services: Services) -> None:
    liveness = Liveness()
    app.add_route("/", liveness)
    app.add_route("/healthz", liveness)
    app.add_route("/health", Health(services.health, services.access))
    app.add_route("/health/live", liveness)
    app.add_route("/health/ready", Readiness(services.health))
    app.add_route("/metrics", MetricsExposition(services.metrics, services.access))
    app.add_route("/openapi.json", OpenApiDocument(app))
    app.add_route("/docs", DocsPage())

    codes = CodeCollection(services.codes, services.access)
    code = CodeItem(services.codes, services.access)
    app.add_route("/code", codes)
    app.add_route("/code/{code_id}", code)
    app.add_route("/admin/code", codes, suffix="admin")
    app.add_route("/admin/code/{code_id}", code, suffix="admin")

    history, access = services.history, services.access
    app.add_route("/coderun", RunCollection(history, access))
    app.add_route("/coderun/{run_id}", RunItem(history, access))
    app.add_route("/codelog", LogCollection(history, access))
    app.add_route("/codelog/{log_id}", LogItem(history, access))

    app.add_route("/projects/{project_uuid}", ProjectItem(services.projects, access))
    app.add_route(
        "/projects/{project_uuid}/permissions", PermissionCollection(services.projects, access)
    )
    app.add_route(
        "/projects/{project_uuid}/permissions/{email}", PermissionItem(services.projects, access)
    )

    add_flow_routes(app, services.flows, access)
    add_secret_routes(app, services.secrets, access)
    add_version_routes(app, services)  # issue 15: code versions
    add_schedule_routes(app, services)  # issue 15: schedules

    async_runs = services.async_runs
    app.add_route("/run/{code_id}", RunCode(services.runs, access, async_runs))
    app.add_route("/endpoint/{code_id}", Endpoint(services.runs, services.rate_limiter, access))
    app.add_route(
        "/action/endpoint/{code_id}",
        ActionEndpoint(services.runs, services.rate_limiter, access, async_runs),
    )
    app.add_route("/coderun/{run_id}/async", AsyncRunItem(async_runs, history, access))
    app.add_route("/projects/{project_uuid}/signing-key", SigningKeyItem(async_runs, access))
