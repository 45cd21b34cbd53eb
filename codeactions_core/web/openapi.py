"""The OpenAPI 3.1 description of the API: one place for every core route.

``CORE_PATHS`` maps each route template to its operations. A plugin that adds
routes (``codeactions_add_routes``) describes them with an ``openapi``
attribute on its resource: ``{"get": {operation}, ...}`` (an OpenAPI
operation object per method; ``#/components/schemas/Error`` is the error shape).
:func:`build_document` walks the Falcon router, so the served document holds
exactly the routes the app has; ``tests/test_openapi.py`` fails on any route
missing from one side.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import falcon

from codeactions_core import __version__

JSON = "application/json"
Schema = dict[str, Any]
Operation = dict[str, Any]

ERROR: Schema = {"$ref": "#/components/schemas/Error"}
ANY_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
"""The methods of the run routes that accept any method."""

TIMESTAMP: Schema = {"type": "string", "format": "date-time"}
NULLABLE_TIMESTAMP: Schema = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "description": "Every failure: a human-readable reason.",
        "properties": {"message": {"type": "string"}},
        "required": ["message"],
    },
    "Code": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "type": {"type": "string", "enum": ["flow", "endpoint"]},
            "source": {"type": "string"},
            "language": {"type": "string"},
            "url": {"type": ["string", "null"]},
            "project_uuid": {"type": "string"},
            "timeout": {"type": "integer"},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
            "version": {"type": "integer", "description": "the current version's number"},
        },
        "required": ["id", "name", "type", "source", "language", "project_uuid", "timeout"],
    },
    "CodeFields": {
        "type": "object",
        "description": "A code as JSON; any other body is the raw source text.",
        "properties": {
            "name": {"type": "string"},
            "source": {"type": "string"},
            "language": {"type": "string", "enum": ["python", "javascript", "go"]},
            "type": {"type": "string", "enum": ["flow", "endpoint"]},
            "project_uuid": {"type": "string"},
            "timeout": {"type": ["integer", "string"]},
        },
    },
    "CodeRun": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "code_id": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "started", "completed", "failed"]},
            "result": {"type": "string"},
            "extra": {"type": "object"},
            "params": {"type": "object"},
            "body": {"type": "string"},
            "headers": {"type": "object"},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
            "version": {"type": "integer", "description": "the code version it ran"},
        },
        "required": ["id", "code_id", "status"],
    },
    "CodeVersion": {
        "type": "object",
        "description": "One immutable state of a code's program; listings leave out source.",
        "properties": {
            "code_id": {"type": "string"},
            "number": {"type": "integer"},
            "source": {"type": "string"},
            "language": {"type": "string"},
            "timeout": {"type": "integer"},
            "sha256": {"type": "string"},
            "author": {"type": "string"},
            "note": {"type": "string"},
            "created_at": TIMESTAMP,
        },
        "required": ["code_id", "number", "language", "timeout", "sha256", "created_at"],
    },
    "CodeDiff": {
        "type": "object",
        "properties": {
            "code_id": {"type": "string"},
            "from": {"type": "integer"},
            "to": {"type": "integer"},
            "diff": {"type": "string", "description": "unified diff of the sources"},
            "changes": {"type": "object", "description": "language/timeout: {from, to}"},
        },
        "required": ["code_id", "from", "to", "diff", "changes"],
    },
    "Schedule": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "target_type": {"type": "string", "enum": ["code", "flow"]},
            "target_id": {"type": "string"},
            "project_uuid": {"type": "string"},
            "cron": {"type": "string"},
            "timezone": {"type": "string"},
            "params": {"type": "object"},
            "variables": {"type": "object"},
            "version": {"type": ["integer", "null"]},
            "created_by": {"type": "string"},
            "next_fire_at": TIMESTAMP,
            "last_fired_at": NULLABLE_TIMESTAMP,
            "missed": {"type": "integer", "description": "occurrences no scheduler fired"},
            "last_missed_at": NULLABLE_TIMESTAMP,
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
            "firings": {"type": "array", "items": {"$ref": "#/components/schemas/ScheduleFiring"}},
        },
        "required": [
            "id",
            "target_type",
            "target_id",
            "cron",
            "timezone",
            "next_fire_at",
            "missed",
        ],
    },
    "ScheduleFiring": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "schedule_id": {"type": "string"},
            "scheduled_for": TIMESTAMP,
            "fired_at": TIMESTAMP,
            "status": {"type": "string", "enum": ["started", "fired", "failed"]},
            "run_id": {"type": ["string", "null"]},
            "execution_id": {"type": ["string", "null"]},
            "error": {"type": "string"},
        },
        "required": ["id", "schedule_id", "scheduled_for", "status"],
    },
    "NewSchedule": {
        "type": "object",
        "properties": {
            "cron": {"type": "string", "description": "5 fields, or 6 with seconds first"},
            "timezone": {"type": "string", "description": "IANA name; UTC when absent"},
            "params": {"type": "object", "description": "a code's query parameters"},
            "variables": {"type": "object", "description": "a flow execution's variables"},
            "version": {"type": "integer", "description": "pin a code (or flow) version"},
        },
        "required": ["cron"],
    },
    "CodeLog": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "run_id": {"type": "string"},
            "code_id": {"type": "string"},
            "type": {"type": "string"},
            "content": {"type": "string"},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        },
        "required": ["id", "run_id", "code_id", "type", "content"],
    },
    "LogPage": {
        "type": "object",
        "properties": {
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/CodeLog"}},
            "total": {"type": "integer"},
            "page": {"type": "integer"},
            "last_page": {"type": "integer"},
        },
        "required": ["data", "total", "page", "last_page"],
    },
    "Project": {
        "type": "object",
        "properties": {
            "uuid": {"type": "string"},
            "name": {"type": "string"},
            "authorizations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"user_email": {"type": "string"}, "role": {"type": "integer"}},
                },
            },
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        },
        "required": ["uuid", "name"],
    },
    "Permission": {
        "type": "object",
        "properties": {
            "project_uuid": {"type": "string"},
            "email": {"type": "string"},
            "role": {"type": "integer", "enum": [1, 2, 3]},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        },
        "required": ["project_uuid", "email", "role"],
    },
    "Secret": {
        "type": "object",
        "description": "A project secret as the API shows it: never its value.",
        "properties": {
            "project_uuid": {"type": "string"},
            "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,127}$"},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        },
        "required": ["project_uuid", "name"],
    },
    "Flow": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "project_uuid": {"type": "string"},
            "created_by": {"type": "string"},
            "is_active": {"type": "boolean"},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        },
        "required": ["id", "name", "project_uuid", "is_active"],
    },
    "Step": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "type": {
                "type": "string",
                "description": "a step runner: code, http_call, wait, tabular, ...",
            },
            "name": {"type": "string"},
            "config": {"type": "object"},
            "continue_on_error": {"type": "boolean"},
        },
        "required": ["type"],
    },
    "FlowVersion": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "flow_definition_id": {"type": "string"},
            "version_number": {"type": "integer"},
            "steps": {"type": "array", "items": {"$ref": "#/components/schemas/Step"}},
            "status": {"type": "string", "enum": ["draft", "published", "archived"]},
            "published_at": NULLABLE_TIMESTAMP,
            "created_by": {"type": "string"},
            "change_notes": {"type": "string"},
            "created_at": TIMESTAMP,
        },
        "required": ["id", "flow_definition_id", "version_number", "steps", "status"],
    },
    "AsyncRun": {
        "type": "object",
        "description": "How an async run went: attempts by workers, redelivery, its callback.",
        "properties": {
            "run_id": {"type": "string"},
            "project_uuid": {"type": "string"},
            "callback_url": {"type": ["string", "null"]},
            "attempts": {"type": "integer", "description": "times a worker started it (at most 2)"},
            "redelivered": {
                "type": "boolean",
                "description": "handed over again: a worker holding it died or stopped",
            },
            "worker": {"type": ["string", "null"], "description": "host:pid that took it last"},
            "callback": {
                "type": "object",
                "properties": {
                    "state": {"type": "string", "enum": ["none", "pending", "delivered", "failed"]},
                    "attempts": {"type": "integer"},
                    "error": {"type": ["string", "null"]},
                },
            },
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        },
        "required": ["run_id", "attempts", "redelivered", "callback"],
    },
    "AsyncAccepted": {
        "type": "object",
        "properties": {
            "code_id": {"type": "string"},
            "run_id": {"type": "string"},
            "status": {"type": "string", "enum": ["queued"]},
            "location": {"type": "string"},
            "async": {"$ref": "#/components/schemas/AsyncRun"},
        },
        "required": ["run_id", "status", "location"],
    },
    "SigningKey": {
        "type": "object",
        "properties": {
            "project_uuid": {"type": "string"},
            "created_at": TIMESTAMP,
            "signing_key": {"type": "string", "description": "only in the answer to POST"},
        },
        "required": ["project_uuid", "created_at"],
    },
    "FlowExecution": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "flow_definition_id": {"type": "string"},
            "flow_version_id": {"type": "string"},
            "lead_id": {"type": ["string", "null"]},
            "status": {"type": "string"},
            "logs": {"type": "array", "items": {"type": "object"}},
            "result": {"type": "object"},
            "error_message": {"type": "string"},
            "context": {"type": "object"},
            "executed_by": {"type": "string"},
            "created_at": TIMESTAMP,
            "started_at": NULLABLE_TIMESTAMP,
            "finished_at": NULLABLE_TIMESTAMP,
            "next_step": {"type": "integer"},
            "resume_at": NULLABLE_TIMESTAMP,
            "cancel_requested": {"type": "boolean"},
        },
        "required": ["id", "flow_definition_id", "flow_version_id", "status"],
    },
}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def array_of(name: str) -> Schema:
    return {"type": "array", "items": ref(name)}


def json_body(schema: Schema, description: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"content": {JSON: {"schema": schema}}}
    if description:
        body["description"] = description
    return body


def answer(description: str, schema: Schema | None = None, media: str = JSON) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {media: {"schema": schema}}
    return out


def path_param(name: str, description: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description or name,
    }


def query(
    name: str, description: str, required: bool = False, schema: Schema | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def op(
    tag: str,
    summary: str,
    ok: dict[str, dict[str, Any]],
    *,
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    public: bool = False,
) -> Operation:
    """One operation: its answers, plus ``default`` as the error shape."""
    operation: Operation = {
        "tags": [tag],
        "summary": summary,
        "responses": {**ok, "default": answer('an error: {"message": ...}', ERROR)},
    }
    if body is not None:
        operation["requestBody"] = body
    if params:
        operation["parameters"] = params
    if public:
        operation["security"] = []
    return operation


CODE_QUERY = [
    query("name", "the code's name"),
    query("language", "python, javascript or go"),
    query("type", "endpoint or flow"),
    query("project_uuid", "the project"),
    query("timeout", "seconds, up to the server's maximum"),
]
CODE_BODY = {
    "description": "The raw source (any content type), or a JSON object of code fields.",
    "content": {
        JSON: {"schema": ref("CodeFields")},
        "text/plain": {"schema": {"type": "string"}},
    },
}
OBJECT_BODY = json_body({"type": "object"})


ACCEPTED = answer("accepted: the run is queued (Location: /coderun/{id})", ref("AsyncAccepted"))
CALLBACK_URL = query(
    "callback_url", "async runs: where the finished run is POSTed, signed (X-Codeactions-Signature)"
)


def run_operations(
    path: str, summary: str, ok: str, public: bool, asynchronous: bool = False
) -> dict[str, Operation]:
    """The any-method run routes: the code chooses what to answer."""
    operations = {}
    for method in ANY_METHODS:
        operation = op(
            "runs",
            summary,
            {
                "200": {"description": ok, "content": {"*/*": {"schema": {}}}},
                "404": answer("unknown code, or not an endpoint code", ERROR),
                "408": answer("the code passed its timeout", ERROR),
                "500": answer("the code raised; the run is failed", ERROR),
            },
            params=[path_param("code_id")],
            public=public,
        )
        if method in ("post", "put", "patch", "delete"):
            operation["requestBody"] = {"required": False, "content": {"*/*": {"schema": {}}}}
        if method == "head":
            operation["responses"]["200"] = {"description": ok}
        if asynchronous:
            accepted = ACCEPTED if method != "head" else {"description": "accepted"}
            operation["responses"]["202"] = accepted
            operation["parameters"] = [
                *operation["parameters"],
                {
                    "name": "Prefer",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "respond-async: answer 202 at once and run the code later",
                },
                CALLBACK_URL,
            ]
        operations[method] = operation
    return operations


FLOW_ID = path_param("flow_id")
VERSION = path_param("number", "a version number")
EXECUTION_ID = path_param("execution_id")

CORE_PATHS: dict[str, dict[str, Operation]] = {
    "/": {
        "get": op("health", "liveness", {"200": answer("alive", {"type": "object"})}, public=True)
    },
    "/healthz": {
        "get": op("health", "liveness", {"200": answer("alive", {"type": "object"})}, public=True)
    },
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
    "/code": {
        "get": op(
            "codes",
            "a project's codes",
            {"200": answer("codes", array_of("Code"))},
            params=[
                query("project_uuid", "the project", required=True),
                query("code_type", "only endpoint or flow codes"),
            ],
        ),
        "post": op(
            "codes",
            "create a code",
            {"201": answer("created", ref("Code"))},
            body=CODE_BODY,
            params=CODE_QUERY,
        ),
    },
    "/code/{code_id}": {
        "get": op(
            "codes",
            "one code",
            {"200": answer("the code", ref("Code"))},
            params=[path_param("code_id")],
        ),
        "patch": op(
            "codes",
            "change what is sent",
            {"200": answer("updated", ref("Code"))},
            body=CODE_BODY,
            params=[path_param("code_id"), *CODE_QUERY],
        ),
        "delete": op(
            "codes",
            "delete a code",
            {"200": answer("deleted (empty body)")},
            params=[path_param("code_id")],
        ),
    },
    "/admin/code": {
        "post": op(
            "codes",
            "create a code (admin twin)",
            {"201": answer("created", ref("Code"))},
            body=CODE_BODY,
            params=CODE_QUERY,
        ),
    },
    "/admin/code/{code_id}": {
        "patch": op(
            "codes",
            "change a code (admin twin)",
            {"200": answer("updated", ref("Code"))},
            body=CODE_BODY,
            params=[path_param("code_id"), *CODE_QUERY],
        ),
    },
    "/coderun": {
        "get": op(
            "history",
            "runs, newest first",
            {"200": answer("runs", array_of("CodeRun"))},
            params=[
                query("code_id", "a code's runs"),
                query("after", "RFC 3339 time"),
                query("before", "RFC 3339 time"),
            ],
        )
    },
    "/coderun/{run_id}": {
        "get": op(
            "history",
            "one run",
            {"200": answer("the run", ref("CodeRun"))},
            params=[path_param("run_id")],
        )
    },
    "/codelog": {
        "get": op(
            "history",
            "log lines, 20 a page",
            {"200": answer("a page", ref("LogPage"))},
            params=[
                query("run_id", "a run's lines"),
                query("code_id", "a code's lines"),
                query("page", "1-based page"),
            ],
        )
    },
    "/codelog/{log_id}": {
        "get": op(
            "history",
            "one log line",
            {"200": answer("the line", ref("CodeLog"))},
            params=[path_param("log_id")],
        )
    },
    "/projects/{project_uuid}": {
        "get": op(
            "projects",
            "a project (service token)",
            {"200": answer("the project", ref("Project"))},
            params=[path_param("project_uuid")],
        ),
        "put": op(
            "projects",
            "create or update a project and its permissions",
            {"200": answer("the project", ref("Project"))},
            body=json_body(
                {
                    "type": "object",
                    "properties": {
                        "uuid": {"type": "string"},
                        "name": {"type": "string"},
                        "authorizations": {"type": "array", "items": {"type": "object"}},
                    },
                }
            ),
            params=[path_param("project_uuid")],
        ),
    },
    "/projects/{project_uuid}/permissions": {
        "get": op(
            "projects",
            "a project's permissions",
            {"200": answer("permissions", array_of("Permission"))},
            params=[path_param("project_uuid")],
        )
    },
    "/projects/{project_uuid}/permissions/{email}": {
        "put": op(
            "projects",
            "grant or change a role",
            {"200": answer("the permission", ref("Permission"))},
            body=json_body(
                {
                    "type": "object",
                    "properties": {"role": {"type": "integer", "enum": [1, 2, 3]}},
                    "required": ["role"],
                }
            ),
            params=[path_param("project_uuid"), path_param("email")],
        ),
        "delete": op(
            "projects",
            "remove a permission",
            {"200": answer("removed", {"type": "object"})},
            params=[path_param("project_uuid"), path_param("email")],
        ),
    },
    "/projects/{project_uuid}/secrets": {
        "get": op(
            "secrets",
            "a project's secrets: names and timestamps, never values",
            {"200": answer("secrets", array_of("Secret"))},
            params=[path_param("project_uuid")],
        )
    },
    "/projects/{project_uuid}/secrets/{name}": {
        "put": op(
            "secrets",
            "create or replace a secret (moderator); encrypted at rest",
            {
                "200": answer("the secret, without its value", ref("Secret")),
                "503": answer("no SECRETS_KEY is configured", ERROR),
            },
            body={
                "required": True,
                "description": 'The value: `{"value": "..."}` as JSON, '
                "or the raw text with any other content type.",
                "content": {
                    JSON: {
                        "schema": {
                            "type": "object",
                            "required": ["value"],
                            "properties": {"value": {"type": "string"}},
                        }
                    },
                    "text/plain": {"schema": {"type": "string"}},
                },
            },
            params=[path_param("project_uuid"), path_param("name", "letters, digits and _")],
        ),
        "delete": op(
            "secrets",
            "delete a secret (moderator)",
            {"200": answer("deleted", {"type": "object"})},
            params=[path_param("project_uuid"), path_param("name")],
        ),
    },
    "/flows": {
        "get": op(
            "flows",
            "a project's flows",
            {"200": answer("flows", array_of("Flow"))},
            params=[
                query("project_uuid", "the project", required=True),
                query("active", "true: only active flows"),
            ],
        ),
        "post": op(
            "flows",
            "create a flow",
            {"201": answer("created", ref("Flow"))},
            body=json_body(
                {
                    "type": "object",
                    "required": ["name", "project_uuid"],
                    "properties": {
                        "name": {"type": "string"},
                        "project_uuid": {"type": "string"},
                        "description": {"type": "string"},
                    },
                }
            ),
        ),
    },
    "/flows/{flow_id}": {
        "get": op("flows", "one flow", {"200": answer("the flow", ref("Flow"))}, params=[FLOW_ID]),
        "patch": op(
            "flows",
            "rename, describe, (de)activate",
            {"200": answer("the flow", ref("Flow"))},
            body=json_body(
                {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "description": {"type": "string"},
                        "is_active": {"type": "boolean"},
                    },
                }
            ),
            params=[FLOW_ID],
        ),
    },
    "/flows/{flow_id}/versions": {
        "get": op(
            "flows",
            "a flow's versions",
            {"200": answer("versions", array_of("FlowVersion"))},
            params=[FLOW_ID],
        ),
        "post": op(
            "flows",
            "a new draft version",
            {"201": answer("created", ref("FlowVersion"))},
            body=json_body(
                {
                    "type": "object",
                    "required": ["steps"],
                    "properties": {
                        "steps": {"type": "array", "items": ref("Step")},
                        "change_notes": {"type": "string"},
                    },
                }
            ),
            params=[FLOW_ID],
        ),
    },
    "/flows/{flow_id}/versions/{number}": {
        "get": op(
            "flows",
            "one version",
            {"200": answer("the version", ref("FlowVersion"))},
            params=[FLOW_ID, VERSION],
        ),
        "patch": op(
            "flows",
            "change a draft",
            {"200": answer("the version", ref("FlowVersion"))},
            body=json_body(
                {
                    "type": "object",
                    "properties": {
                        "steps": {"type": "array", "items": ref("Step")},
                        "change_notes": {"type": "string"},
                    },
                }
            ),
            params=[FLOW_ID, VERSION],
        ),
    },
    "/flows/{flow_id}/versions/{number}/publish": {
        "post": op(
            "flows",
            "publish a draft (the previous published one is archived)",
            {"200": answer("the version", ref("FlowVersion"))},
            params=[FLOW_ID, VERSION],
        )
    },
    "/flows/{flow_id}/versions/{number}/rollback": {
        "post": op(
            "flows",
            "publish an archived version again",
            {"200": answer("the version", ref("FlowVersion"))},
            params=[FLOW_ID, VERSION],
        )
    },
    "/flows/{flow_id}/diff": {
        "get": op(
            "flows",
            "what changed between two versions",
            {"200": answer("the diff", {"type": "object"})},
            params=[FLOW_ID, query("from", "a version number"), query("to", "a version number")],
        )
    },
    "/flows/{flow_id}/executions": {
        "get": op(
            "flows",
            "a flow's executions",
            {"200": answer("executions", array_of("FlowExecution"))},
            params=[FLOW_ID, query("status", "only executions in this state")],
        ),
        "post": op(
            "flows",
            "start an execution",
            {
                "200": answer("finished (with ?wait=true)", ref("FlowExecution")),
                "202": answer("started", ref("FlowExecution")),
            },
            body=json_body(
                {
                    "type": "object",
                    "properties": {
                        "lead_id": {"type": ["string", "integer", "null"]},
                        "variables": {"type": "object"},
                        "version": {"type": "integer"},
                    },
                }
            ),
            params=[FLOW_ID, query("wait", "true: answer once finished (bounded)")],
        ),
    },
    "/flows/{flow_id}/executions/{execution_id}": {
        "get": op(
            "flows",
            "one execution",
            {"200": answer("the execution", ref("FlowExecution"))},
            params=[FLOW_ID, EXECUTION_ID],
        )
    },
    "/flows/{flow_id}/executions/{execution_id}/cancel": {
        "post": op(
            "flows",
            "cancel an execution",
            {
                "200": answer("cancelled", ref("FlowExecution")),
                "202": answer("cancelling once its step ends", ref("FlowExecution")),
            },
            params=[FLOW_ID, EXECUTION_ID],
        )
    },
    "/run/{code_id}": {
        "post": op(
            "runs",
            "run any code; answers the whole run",
            {
                "200": answer(
                    "the run",
                    {
                        "type": "object",
                        "properties": {"code_id": {"type": "string"}, "result": ref("CodeRun")},
                        "required": ["code_id", "result"],
                    },
                )
            },
            body={"required": False, "content": {"*/*": {"schema": {}}}},
            params=[
                path_param("code_id"),
                query("version", "run this code version (default: the current one)"),
                query(
                    "async",
                    "true: answer 202 at once; a worker runs the code",
                    schema={"type": "boolean"},
                ),
                CALLBACK_URL,
            ],
        )
        | {
            "responses": {
                "200": answer(
                    "the run",
                    {
                        "type": "object",
                        "properties": {"code_id": {"type": "string"}, "result": ref("CodeRun")},
                        "required": ["code_id", "result"],
                    },
                ),
                "202": ACCEPTED,
                "default": answer('an error: {"message": ...}', ERROR),
            }
        }
    },
    "/endpoint/{code_id}": run_operations(
        "/endpoint/{code_id}",
        "run an endpoint code; answers its raw result as text",
        "the result",
        True,
    ),
    "/action/endpoint/{code_id}": run_operations(
        "/action/endpoint/{code_id}",
        "the public entry (rate limited); the code shapes the answer",
        "what the code set",
        True,
        asynchronous=True,
    ),
    "/coderun/{run_id}/async": {
        "get": op(
            "history",
            "how an async run went (attempts, redelivery, callback)",
            {"200": answer("the async run", ref("AsyncRun"))},
            params=[path_param("run_id")],
        )
    },
    "/projects/{project_uuid}/signing-key": {
        "get": op(
            "projects",
            "whether the project has a callback signing key (never the key)",
            {"200": answer("the key's metadata", ref("SigningKey"))},
            params=[path_param("project_uuid")],
        ),
        "post": op(
            "projects",
            "a new callback signing key (a moderator); shown this once",
            {"201": answer("the new key", ref("SigningKey"))},
            params=[path_param("project_uuid")],
        ),
    },
}

CODE_ID = path_param("code_id")
SCHEDULE_ID = path_param("schedule_id")
NOTE = query("note", "why (kept on the new version)")
CORE_PATHS.update(
    {  # issue 15: code versions and schedules
        "/code/{code_id}/versions": {
            "get": op(
                "versions",
                "a code's versions, newest first (without sources)",
                {"200": answer("versions", array_of("CodeVersion"))},
                params=[CODE_ID],
            )
        },
        "/code/{code_id}/versions/{number}": {
            "get": op(
                "versions",
                "one version with its source",
                {"200": answer("the version", ref("CodeVersion"))},
                params=[CODE_ID, VERSION],
            )
        },
        "/code/{code_id}/versions/{number}/restore": {
            "post": op(
                "versions",
                "a new version with that version's source, language and timeout",
                {"200": answer("the code at its new version", ref("Code"))},
                body={
                    "required": False,
                    "content": {
                        JSON: {
                            "schema": {"type": "object", "properties": {"note": {"type": "string"}}}
                        }
                    },
                },
                params=[CODE_ID, VERSION, NOTE],
            )
        },
        "/code/{code_id}/diff": {
            "get": op(
                "versions",
                "unified diff between two versions",
                {"200": answer("the diff", ref("CodeDiff"))},
                params=[
                    CODE_ID,
                    query("from", "a version number", required=True),
                    query("to", "a version number", required=True),
                ],
            )
        },
        "/code/{code_id}/schedules": {
            "get": op(
                "schedules",
                "a code's schedules",
                {"200": answer("schedules", array_of("Schedule"))},
                params=[CODE_ID],
            ),
            "post": op(
                "schedules",
                "run the code on a cron expression in a time zone",
                {"201": answer("created", ref("Schedule"))},
                body=json_body(ref("NewSchedule")),
                params=[CODE_ID],
            ),
        },
        "/code/{code_id}/schedules/{schedule_id}": {
            "get": op(
                "schedules",
                "a schedule and its latest firings",
                {"200": answer("the schedule", ref("Schedule"))},
                params=[CODE_ID, SCHEDULE_ID],
            ),
            "delete": op(
                "schedules",
                "delete a schedule and its firings",
                {"200": answer("the deleted schedule", ref("Schedule"))},
                params=[CODE_ID, SCHEDULE_ID],
            ),
        },
        "/flows/{flow_id}/schedules": {
            "get": op(
                "schedules",
                "a flow's schedules",
                {"200": answer("schedules", array_of("Schedule"))},
                params=[FLOW_ID],
            ),
            "post": op(
                "schedules",
                "execute the flow on a cron expression in a time zone",
                {"201": answer("created", ref("Schedule"))},
                body=json_body(ref("NewSchedule")),
                params=[FLOW_ID],
            ),
        },
        "/flows/{flow_id}/schedules/{schedule_id}": {
            "get": op(
                "schedules",
                "a schedule and its latest firings",
                {"200": answer("the schedule", ref("Schedule"))},
                params=[FLOW_ID, SCHEDULE_ID],
            ),
            "delete": op(
                "schedules",
                "delete a schedule and its firings",
                {"200": answer("the deleted schedule", ref("Schedule"))},
                params=[FLOW_ID, SCHEDULE_ID],
            ),
        },
    }
)


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
    paths: dict[str, dict[str, Operation]] = {}
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
