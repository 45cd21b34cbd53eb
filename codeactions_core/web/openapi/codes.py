"""The routes of codes: create, read, change and delete them, and their versions."""

from __future__ import annotations

from codeactions_core.web.openapi.builders import (
    CODE_ID,
    JSON,
    VERSION,
    Operation,
    Paths,
    answer,
    array_of,
    op,
    query,
    ref,
)

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
NOTE = query("note", "why (kept on the new version)")


def creating(summary: str) -> Operation:
    """Create a code (``/code`` and its admin twin)."""
    return op(
        "codes",
        summary,
        {"201": answer("created", ref("Code"))},
        body=CODE_BODY,
        params=CODE_QUERY,
    )


def changing(summary: str) -> Operation:
    """Change a code (``/code/{code_id}`` and its admin twin)."""
    return op(
        "codes",
        summary,
        {"200": answer("updated", ref("Code"))},
        body=CODE_BODY,
        params=[CODE_ID, *CODE_QUERY],
    )


PATHS: Paths = {
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
        "post": creating("create a code"),
    },
    "/code/{code_id}": {
        "get": op(
            "codes",
            "one code",
            {"200": answer("the code", ref("Code"))},
            params=[CODE_ID],
        ),
        "patch": changing("change what is sent"),
        "delete": op(
            "codes",
            "delete a code",
            {"200": answer("deleted (empty body)")},
            params=[CODE_ID],
        ),
    },
    "/admin/code": {"post": creating("create a code (admin twin)")},
    "/admin/code/{code_id}": {"patch": changing("change a code (admin twin)")},
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
                    JSON: {"schema": {"type": "object", "properties": {"note": {"type": "string"}}}}
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
}
