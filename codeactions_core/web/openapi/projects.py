"""The routes of a project: the project itself, its permissions, its secrets and its callback
signing key."""

from __future__ import annotations

from codeactions_core.web.openapi.builders import (
    ERROR,
    JSON,
    Paths,
    answer,
    array_of,
    json_body,
    op,
    path_param,
    ref,
)

PATHS: Paths = {
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
