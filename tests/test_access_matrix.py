"""Every management route against every kind of caller, with the real token and OIDC
plugins and a real userinfo server on loopback."""

from __future__ import annotations

import itertools

import pytest
from codeactions_auth_oidc.settings import OidcSettings
from codeactions_auth_oidc.testing import userinfo_server

from codeactions_core.secret_box import new_key
from codeactions_core.settings import Settings
from codeactions_core.testing.api import api_client

TOKEN = "matrix-service-token"
METRICS_TOKEN = "matrix-metrics-token"
PROJECT, OTHER = "project-p", "project-q"
USERS = {
    "viewer": {"email": "viewer@x.org"},
    "contributor": {"email": "contributor@x.org"},
    "moderator": {"email": "moderator@x.org"},
    "other-moderator": {"email": "other@x.org"},
    "internal": {"email": "robot@x.org", "can_communicate_internally": True},
}
CALLERS = {
    "no token": {},
    "bad token": {"Authorization": "Bearer not-a-known-token"},
    "viewer": {"Authorization": "Bearer viewer"},
    "contributor": {"Authorization": "Bearer contributor"},
    "moderator": {"Authorization": "Bearer moderator"},
    "other-moderator": {"Authorization": "Bearer other-moderator"},
    "internal": {"Authorization": "Bearer internal"},
    "service": {"Authorization": f"Token {TOKEN}"},
    "metrics token": {"Authorization": f"Bearer {METRICS_TOKEN}"},
}
UNKNOWN = {"no token", "bad token", "metrics token"}
"""Callers no provider identifies (the metrics token opens /metrics only)."""
# Who may do what (COMPAT.md "Auth"): read needs a role >= 1 on the project,
# executing a flow or running a code (/run) >= 2, write >= 3; projects are managed by
# the service or internal users; /metrics is for the service, internal users and the
# metrics token.
ALLOWED = {
    "read": {"viewer", "contributor", "moderator", "internal", "service"},
    "execute": {"contributor", "moderator", "internal", "service"},
    "write": {"moderator", "internal", "service"},
    "trusted": {"internal", "service"},
    "metrics": {"internal", "service", "metrics token"},
}
CODE = 'def Run(engine):\n    engine.log.info("hi")\n    engine.result.set("ok")\n'
CREATE = {"name": "m", "language": "python", "type": "endpoint", "project_uuid": PROJECT}
_fresh = itertools.count()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with userinfo_server(USERS) as oidc:
        settings = Settings.of(
            OidcSettings,
            data_dir=str(tmp_path_factory.mktemp("data")),
            auth_token=TOKEN,
            metrics_token=METRICS_TOKEN,
            secrets_key=(new_key(),),
            **oidc.settings(),
        )
        with api_client(settings) as (client, services):
            for user, role, project in (
                ("viewer", 1, PROJECT),
                ("contributor", 2, PROJECT),
                ("moderator", 3, PROJECT),
                ("other-moderator", 3, OTHER),
            ):
                services.store.permissions.upsert(project, USERS[user]["email"], role)
            service = CALLERS["service"]
            code = client.simulate_post("/code", params=CREATE, body=CODE, headers=service).json
            run = client.simulate_post(f"/run/{code['id']}", headers=service).json["result"]
            log = client.simulate_get(
                "/codelog", params={"run_id": run["id"]}, headers=service
            ).json["data"][0]
            flow = published_flow(client)
            execution = start(client, flow)
            queued = client.simulate_post(
                f"/run/{code['id']}", params={"async": "true"}, headers=service
            )
            client.simulate_post(f"/projects/{PROJECT}/signing-key", headers=service)
            schedule = new_schedule(client, code["id"])
            yield {
                "client": client,
                "code": code["id"],
                "run": run["id"],
                "log": log["id"],
                "flow": flow,
                "execution": execution,
                "async run": queued.json["run_id"],
                "schedule": schedule,
            }


STEPS = [{"id": "pause", "type": "wait", "name": "pause", "config": {"seconds": 3600}}]


def new_flow(client) -> str:
    flow = {"name": "f", "project_uuid": PROJECT}
    return client.simulate_post("/flows", json=flow, headers=CALLERS["service"]).json["id"]


def new_draft(client, flow_id: str) -> int:
    created = client.simulate_post(
        f"/flows/{flow_id}/versions", json={"steps": STEPS}, headers=CALLERS["service"]
    )
    return created.json["version_number"]


def published_flow(client) -> str:
    flow_id = new_flow(client)
    client.simulate_post(
        f"/flows/{flow_id}/versions/{new_draft(client, flow_id)}/publish",
        headers=CALLERS["service"],
    )
    return flow_id


def with_archived_version(client) -> str:
    """A flow whose version 1 is archived (version 2 published)."""
    flow_id = published_flow(client)
    client.simulate_post(
        f"/flows/{flow_id}/versions/{new_draft(client, flow_id)}/publish",
        headers=CALLERS["service"],
    )
    return flow_id


def start(client, flow_id: str) -> str:
    return client.simulate_post(
        f"/flows/{flow_id}/executions", json={}, headers=CALLERS["service"]
    ).json["id"]


def new_code(world) -> str:
    created = world["client"].simulate_post(
        "/code", params=CREATE, body=CODE, headers=CALLERS["service"]
    )
    return created.json["id"]


def new_secret(world) -> str:
    name = f"GONE{next(_fresh)}"
    put = world["client"].simulate_put(
        f"/projects/{PROJECT}/secrets/{name}",
        json={"value": "to-delete"},
        headers=CALLERS["service"],
    )
    assert put.status_code == 200, put.text
    return name


EVERY_HOUR = {"cron": "0 * * * *", "timezone": "Europe/Lisbon"}


def new_schedule(client, code_id: str) -> str:
    created = client.simulate_post(
        f"/code/{code_id}/schedules", json=EVERY_HOUR, headers=CALLERS["service"]
    )
    return created.json["id"]


ROUTES = {
    "list codes": ("read", lambda w: ("GET", "/code", {"params": {"project_uuid": PROJECT}})),
    "get code": ("read", lambda w: ("GET", f"/code/{w['code']}", {})),
    "get run": ("read", lambda w: ("GET", f"/coderun/{w['run']}", {})),
    "list runs": ("read", lambda w: ("GET", "/coderun", {"params": {"code_id": w["code"]}})),
    "get log": ("read", lambda w: ("GET", f"/codelog/{w['log']}", {})),
    "logs of a run": ("read", lambda w: ("GET", "/codelog", {"params": {"run_id": w["run"]}})),
    "logs of a code": ("read", lambda w: ("GET", "/codelog", {"params": {"code_id": w["code"]}})),
    "create code": ("write", lambda w: ("POST", "/code", {"params": CREATE, "body": CODE})),
    "create code (admin)": (
        "write",
        lambda w: ("POST", "/admin/code", {"params": CREATE, "body": CODE}),
    ),
    "update code": (
        "write",
        lambda w: ("PATCH", f"/code/{w['code']}", {"params": {"name": "renamed"}}),
    ),
    "update code (admin)": (
        "write",
        lambda w: ("PATCH", f"/admin/code/{w['code']}", {"params": {"name": "again"}}),
    ),
    "delete code": ("write", lambda w: ("DELETE", f"/code/{new_code(w)}", {})),
    "run": ("execute", lambda w: ("POST", f"/run/{w['code']}", {})),
    "async run": (
        "execute",
        lambda w: ("POST", f"/run/{w['code']}", {"params": {"async": "true"}}),
    ),
    "async run record": ("read", lambda w: ("GET", f"/coderun/{w['async run']}/async", {})),
    "signing key info": ("write", lambda w: ("GET", f"/projects/{PROJECT}/signing-key", {})),
    "new signing key": ("write", lambda w: ("POST", f"/projects/{PROJECT}/signing-key", {})),
    "metrics": ("metrics", lambda w: ("GET", "/metrics", {})),
    "list flows": ("read", lambda w: ("GET", "/flows", {"params": {"project_uuid": PROJECT}})),
    "get flow": ("read", lambda w: ("GET", f"/flows/{w['flow']}", {})),
    "list versions": ("read", lambda w: ("GET", f"/flows/{w['flow']}/versions", {})),
    "get version": ("read", lambda w: ("GET", f"/flows/{w['flow']}/versions/1", {})),
    "diff versions": (
        "read",
        lambda w: ("GET", f"/flows/{w['flow']}/diff", {"params": {"from": "1", "to": "1"}}),
    ),
    "list executions": ("read", lambda w: ("GET", f"/flows/{w['flow']}/executions", {})),
    "get execution": (
        "read",
        lambda w: ("GET", f"/flows/{w['flow']}/executions/{w['execution']}", {}),
    ),
    "create flow": (
        "write",
        lambda w: ("POST", "/flows", {"json": {"name": "n", "project_uuid": PROJECT}}),
    ),
    "rename flow": (
        "write",
        lambda w: ("PATCH", f"/flows/{w['flow']}", {"json": {"name": "renamed"}}),
    ),
    "deactivate flow": (
        "write",
        lambda w: ("PATCH", f"/flows/{new_flow(w['client'])}", {"json": {"is_active": False}}),
    ),
    "create version": (
        "write",
        lambda w: ("POST", f"/flows/{w['flow']}/versions", {"json": {"steps": STEPS}}),
    ),
    "edit draft": (
        "write",
        lambda w: (
            "PATCH",
            f"/flows/{w['flow']}/versions/{new_draft(w['client'], w['flow'])}",
            {"json": {"change_notes": "x"}},
        ),
    ),
    "publish": (
        "write",
        lambda w: (
            "POST",
            f"/flows/{w['flow']}/versions/{new_draft(w['client'], w['flow'])}/publish",
            {},
        ),
    ),
    "rollback": (
        "write",
        lambda w: ("POST", f"/flows/{with_archived_version(w['client'])}/versions/1/rollback", {}),
    ),
    "execute": (
        "execute",
        lambda w: ("POST", f"/flows/{w['flow']}/executions", {"json": {"lead_id": 7}}),
    ),
    "cancel": (
        "execute",
        lambda w: (
            "POST",
            f"/flows/{w['flow']}/executions/{start(w['client'], w['flow'])}/cancel",
            {},
        ),
    ),
    "list code versions": ("read", lambda w: ("GET", f"/code/{w['code']}/versions", {})),
    "get code version": ("read", lambda w: ("GET", f"/code/{w['code']}/versions/1", {})),
    "diff code versions": (
        "read",
        lambda w: ("GET", f"/code/{w['code']}/diff", {"params": {"from": "1", "to": "1"}}),
    ),
    "restore code version": (
        "write",
        lambda w: ("POST", f"/code/{w['code']}/versions/1/restore", {}),
    ),
    "run a pinned version": (
        "execute",
        lambda w: ("POST", f"/run/{w['code']}", {"params": {"version": "1"}}),
    ),
    "list code schedules": ("read", lambda w: ("GET", f"/code/{w['code']}/schedules", {})),
    "get code schedule": (
        "read",
        lambda w: ("GET", f"/code/{w['code']}/schedules/{w['schedule']}", {}),
    ),
    "create code schedule": (
        "write",
        lambda w: ("POST", f"/code/{w['code']}/schedules", {"json": EVERY_HOUR}),
    ),
    "delete code schedule": (
        "write",
        lambda w: (
            "DELETE",
            f"/code/{w['code']}/schedules/{new_schedule(w['client'], w['code'])}",
            {},
        ),
    ),
    "list flow schedules": ("read", lambda w: ("GET", f"/flows/{w['flow']}/schedules", {})),
    "create flow schedule": (
        "write",
        lambda w: ("POST", f"/flows/{w['flow']}/schedules", {"json": EVERY_HOUR}),
    ),
    "get project": ("trusted", lambda w: ("GET", f"/projects/{PROJECT}", {})),
    "put project": (
        "trusted",
        lambda w: ("PUT", f"/projects/{PROJECT}", {"json": {"name": "P", "authorizations": []}}),
    ),
    "list permissions": ("trusted", lambda w: ("GET", f"/projects/{PROJECT}/permissions", {})),
    "list secrets": ("read", lambda w: ("GET", f"/projects/{PROJECT}/secrets", {})),
    "put secret": (
        "write",
        lambda w: (
            "PUT",
            f"/projects/{PROJECT}/secrets/S{next(_fresh)}",
            {"json": {"value": "s3cret-value"}},
        ),
    ),
    "delete secret": (
        "write",
        lambda w: ("DELETE", f"/projects/{PROJECT}/secrets/{new_secret(w)}", {}),
    ),
    "put permission": (
        "trusted",
        lambda w: (
            "PUT",
            f"/projects/{PROJECT}/permissions/x{next(_fresh)}@x.org",
            {"json": {"role": 1}},
        ),
    ),
}


@pytest.mark.parametrize("caller", sorted(CALLERS))
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_access(world, route, caller):
    need, request = ROUTES[route]
    if route == "get project":
        world["client"].simulate_put(
            f"/projects/{PROJECT}", json={"name": "P"}, headers=CALLERS["service"]
        )
    method, path, options = request(world)
    answer = world["client"].simulate_request(method, path, headers=CALLERS[caller], **options)
    if caller in ALLOWED[need]:
        assert answer.status_code in (200, 201, 202), answer.text
    elif caller in UNKNOWN:
        assert answer.status_code == 401, answer.text
    else:
        assert answer.status_code == 403, answer.text
    assert answer.status_code < 400 or "message" in answer.json


@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_deleting_a_permission(world, caller):
    email = f"gone{next(_fresh)}@x.org"
    client = world["client"]
    client.simulate_put(
        f"/projects/{PROJECT}/permissions/{email}", json={"role": 2}, headers=CALLERS["service"]
    )
    answer = client.simulate_delete(
        f"/projects/{PROJECT}/permissions/{email}", headers=CALLERS[caller]
    )
    expected = 401 if caller in UNKNOWN else 200 if caller in ALLOWED["trusted"] else 403
    assert answer.status_code == expected


@pytest.mark.parametrize("path", ["/", "/healthz", "/health"])
def test_public_routes_need_nothing(world, path):
    assert world["client"].simulate_get(path).status_code == 200


def test_public_endpoints_need_nothing(world):
    assert world["client"].simulate_get(f"/action/endpoint/{world['code']}").text == "ok"
    assert world["client"].simulate_post(f"/endpoint/{world['code']}").text == "ok"


@pytest.mark.parametrize("caller", sorted(CALLERS))
@pytest.mark.parametrize("route", ["/action/endpoint/{}", "/endpoint/{}"])
def test_pinning_a_version_on_a_public_route_needs_run_rights(world, caller, route):
    answer = world["client"].simulate_get(
        route.format(world["code"]), params={"version": "1"}, headers=CALLERS[caller]
    )
    expected = 401 if caller in UNKNOWN else 200 if caller in ALLOWED["execute"] else 403
    assert answer.status_code == expected, answer.text


def test_a_forbidden_answer_says_why(world):
    answer = world["client"].simulate_patch(
        f"/code/{world['code']}", params={"name": "x"}, headers=CALLERS["viewer"]
    )
    assert (
        answer.json["message"]
        == f"viewer@x.org is a viewer of project {PROJECT!r}; this needs a moderator"
    )
    unknown = world["client"].simulate_get(
        "/code", params={"project_uuid": PROJECT}, headers={"Authorization": "Token nope"}
    )
    assert (unknown.status_code, unknown.json["message"]) == (401, "the service token is not valid")
