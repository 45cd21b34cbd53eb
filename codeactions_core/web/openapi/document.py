"""The document served at ``/openapi.json``: the core's operations and the plugins', for
exactly the routes the app has."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import falcon

from codeactions_core import __version__
from codeactions_core.web.openapi import codes, flows, history, projects, runs, schedules, service
from codeactions_core.web.openapi.builders import Paths
from codeactions_core.web.openapi.schemas import SCHEMAS

CORE_PATHS: Paths = {
    **service.PATHS,
    **codes.PATHS,
    **history.PATHS,
    **runs.PATHS,
    **projects.PATHS,
    **flows.PATHS,
    **schedules.PATHS,
}
"""Each core route template with its operations."""


def routes(app: falcon.App) -> Iterator[tuple[str, str, Any]]:
    """Every (template, method, resource) the app serves with a responder of its own.

    Falcon's generated responders (405 for a method the resource lacks, the
    default OPTIONS) are left out.
    """
    stack = list(app._router._roots)  # Falcon exposes no public walk
    while stack:
        node = stack.pop()
        stack.extend(node.children or [])
        if node.resource is None or not node.method_map:
            continue
        for method, responder in node.method_map.items():
            if not generated(responder):
                yield node.uri_template, method.lower(), node.resource


def generated(responder: Any) -> bool:
    """True for a responder Falcon made (method not allowed, default OPTIONS)."""
    name = getattr(responder, "__qualname__", "") or getattr(responder, "__name__", "")
    module = getattr(responder, "__module__", "") or ""
    return module.startswith("falcon.") or "method_not_allowed" in name


def build_document(app: falcon.App) -> dict[str, Any]:
    """The OpenAPI document of ``app`` as routed: core operations, then plugins' ``openapi``."""
    paths: Paths = {}
    for template, method, resource in routes(app):
        operation = CORE_PATHS.get(template, {}).get(method)
        if operation is None:
            operation = (getattr(resource, "openapi", None) or {}).get(method)
        if operation is not None:
            paths.setdefault(template, {})[method] = copy.deepcopy(operation)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "codeactions",
            "version": __version__,
            "description": "Store small programs and run them on demand. Every failure answers "
            '`{"message": "..."}`.',
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`Token <token>` or `Bearer <OIDC access token>`",
                },
            },
        },
        "security": [{"token": []}, {}],
    }


def undocumented(app: falcon.App) -> list[str]:
    """``METHOD /template`` of each route the app serves that the document lacks."""
    missing = []
    for template, method, resource in routes(app):
        described = CORE_PATHS.get(template, {}).get(method) or (
            getattr(resource, "openapi", None) or {}
        ).get(method)
        if described is None:
            missing.append(f"{method.upper()} {template}")
    return sorted(missing)


def unrouted(app: falcon.App) -> list[str]:
    """``METHOD /template`` of each operation in ``CORE_PATHS`` that the app does not serve."""
    served = {(template, method) for template, method, _ in routes(app)}
    return sorted(
        f"{method.upper()} {template}"
        for template, operations in CORE_PATHS.items()
        for method in operations
        if (template, method) not in served
    )
