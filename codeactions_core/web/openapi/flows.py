"""The routes of flows: definitions, their versions, diffs and executions."""

from __future__ import annotations

from codeactions_core.web.openapi.builders import (
    FLOW_ID,
    VERSION,
    Paths,
    answer,
    array_of,
    json_body,
    op,
    path_param,
    query,
    ref,
)

EXECUTION_ID = path_param("execution_id")

PATHS: Paths = {
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
}
