"""The routes of run history: runs, their log lines, and how an async run went."""

from __future__ import annotations

from codeactions_core.web.openapi.builders import (
    Paths,
    answer,
    array_of,
    op,
    path_param,
    query,
    ref,
)

PATHS: Paths = {
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
    "/coderun/{run_id}/async": {
        "get": op(
            "history",
            "how an async run went (attempts, redelivery, callback)",
            {"200": answer("the async run", ref("AsyncRun"))},
            params=[path_param("run_id")],
        )
    },
}
