"""The routes of schedules, which a code or a flow has alike."""

from __future__ import annotations

from codeactions_core.web.openapi.builders import (
    CODE_ID,
    FLOW_ID,
    Parameter,
    Paths,
    answer,
    array_of,
    json_body,
    op,
    path_param,
    ref,
)

SCHEDULE_ID = path_param("schedule_id")


def schedule_paths(owner: str, owner_id: Parameter, listing: str, creating: str) -> Paths:
    """The schedules of the code or flow at ``owner``: list and create them, read and delete
    one; ``listing`` and ``creating`` are those two operations' summaries."""
    return {
        f"{owner}/schedules": {
            "get": op(
                "schedules",
                listing,
                {"200": answer("schedules", array_of("Schedule"))},
                params=[owner_id],
            ),
            "post": op(
                "schedules",
                creating,
                {"201": answer("created", ref("Schedule"))},
                body=json_body(ref("NewSchedule")),
                params=[owner_id],
            ),
        },
        f"{owner}/schedules/{{schedule_id}}": {
            "get": op(
                "schedules",
                "a schedule and its latest firings",
                {"200": answer("the schedule", ref("Schedule"))},
                params=[owner_id, SCHEDULE_ID],
            ),
            "delete": op(
                "schedules",
                "delete a schedule and its firings",
                {"200": answer("the deleted schedule", ref("Schedule"))},
                params=[owner_id, SCHEDULE_ID],
            ),
        },
    }


PATHS: Paths = {
    **schedule_paths(
        "/code/{code_id}",
        CODE_ID,
        "a code's schedules",
        "run the code on a cron expression in a time zone",
    ),
    **schedule_paths(
        "/flows/{flow_id}",
        FLOW_ID,
        "a flow's schedules",
        "execute the flow on a cron expression in a time zone",
    ),
}
