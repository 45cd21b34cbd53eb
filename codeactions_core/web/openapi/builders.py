"""Small builders of OpenAPI pieces (schemas, bodies, answers, parameters, operations), and
the path parameters several route groups share."""

from __future__ import annotations

from typing import Any

JSON = "application/json"
Schema = dict[str, Any]
Parameter = dict[str, Any]
Operation = dict[str, Any]
Paths = dict[str, dict[str, Operation]]
"""Route template -> method -> operation, as in a document's ``paths``."""


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


ERROR: Schema = ref("Error")


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


def path_param(name: str, description: str = "") -> Parameter:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description or name,
    }


def query(
    name: str, description: str, required: bool = False, schema: Schema | None = None
) -> Parameter:
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
    params: list[Parameter] | None = None,
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


CODE_ID = path_param("code_id")
FLOW_ID = path_param("flow_id")
VERSION = path_param("number", "a version number")
