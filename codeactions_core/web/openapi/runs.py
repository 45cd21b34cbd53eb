"""The routes that run a code: ``/run`` (the whole run) and the public endpoints, where the
code chooses what to answer."""

from __future__ import annotations

from codeactions_core.web.openapi.builders import (
    CODE_ID,
    ERROR,
    Operation,
    Paths,
    answer,
    op,
    query,
    ref,
)

ANY_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
"""The methods of the run routes that accept any method."""
ACCEPTED = answer("accepted: the run is queued (Location: /coderun/{id})", ref("AsyncAccepted"))
CALLBACK_URL = query(
    "callback_url", "async runs: where the finished run is POSTed, signed (X-Codeactions-Signature)"
)


def run_operations(
    summary: str, ok: str, *, public: bool, asynchronous: bool = False
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
            params=[CODE_ID],
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


WHOLE_RUN = answer(
    "the run",
    {
        "type": "object",
        "properties": {"code_id": {"type": "string"}, "result": ref("CodeRun")},
        "required": ["code_id", "result"],
    },
)

PATHS: Paths = {
    "/run/{code_id}": {
        "post": op(
            "runs",
            "run any code; answers the whole run",
            {"200": WHOLE_RUN, "202": ACCEPTED},
            body={"required": False, "content": {"*/*": {"schema": {}}}},
            params=[
                CODE_ID,
                query("version", "run this code version (default: the current one)"),
                query(
                    "async",
                    "true: answer 202 at once; a worker runs the code",
                    schema={"type": "boolean"},
                ),
                CALLBACK_URL,
            ],
        )
    },
    "/endpoint/{code_id}": run_operations(
        "run an endpoint code; answers its raw result as text", "the result", public=True
    ),
    "/action/endpoint/{code_id}": run_operations(
        "the public entry (rate limited); the code shapes the answer",
        "what the code set",
        public=True,
        asynchronous=True,
    ),
}
