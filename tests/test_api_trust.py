"""Trust at the API, through a real `codeactions serve` with the service token, OIDC (a real
userinfo server on loopback) and a metrics token: credentials stay with whoever they were
meant for, every route checks its project, /metrics and /health tell strangers little."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import requests
from codeactions_auth_oidc.testing import userinfo_server

from codeactions_core.testing.server import start_server

TOKEN = f"service-{uuid.uuid4().hex}"
METRICS_TOKEN = f"metrics-{uuid.uuid4().hex}"
PROJECT, OTHER = "trust-p", "trust-q"
USERS = {
    "viewer": {"email": "viewer@x.org"},
    "contributor": {"email": "contributor@x.org"},
    "moderator": {"email": "moderator@x.org"},
    "stranger": {"email": "stranger@x.org"},
}
SERVICE = {"Authorization": f"Token {TOKEN}"}
ECHO_HEADERS = (
    "import json\n"
    "def Run(engine):\n"
    "    engine.result.set(json.dumps({name: list(values) "
    "for name, values in engine.header.items()}),"
    " content_type='json')\n"
)


def bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {user}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with userinfo_server(USERS) as oidc:
        server = start_server(
            {
                "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path_factory.mktemp("data")),
                "FLOWS_CODE_ACTIONS_AUTH_TOKEN": TOKEN,
                "FLOWS_CODE_ACTIONS_METRICS_TOKEN": METRICS_TOKEN,
                "FLOWS_CODE_ACTIONS_REDACT_HEADERS": "X-Api-Key",
                "FLOWS_CODE_ACTIONS_BLACKLIST": "os.system",
                "FLOWS_CODE_ACTIONS_OIDC_AUTH_ENABLED": "true",
                "FLOWS_CODE_ACTIONS_OIDC_HOST": oidc.host,
                "FLOWS_CODE_ACTIONS_OIDC_REALM": oidc.settings()["oidc_realm"],
            },
            tmp_path_factory.mktemp("logs"),
        )
        try:
            for user, role in (("viewer", 1), ("contributor", 2), ("moderator", 3)):
                answer = requests.put(
                    server.url(f"/projects/{PROJECT}/permissions/{USERS[user]['email']}"),
                    json={"role": role},
                    headers=SERVICE,
                    timeout=10,
                )
                assert answer.status_code == 200, answer.text
            yield server
        finally:
            server.stop()


def create(server, source: str = ECHO_HEADERS, project: str = PROJECT) -> str:
    answer = requests.post(
        server.url("/code"),
        params={"name": "t", "language": "python", "type": "endpoint", "project_uuid": project},
        data=source.encode(),
        headers=SERVICE,
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def stored_run(server, run_id: str, headers: dict[str, str]) -> dict:
    answer = requests.get(server.url(f"/coderun/{run_id}"), headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


# --- 1. credentials --------------------------------------------------------------------------


def test_run_keeps_the_service_token_from_the_code_and_the_record(server):
    code = create(server)
    answer = requests.post(
        server.url(f"/run/{code}"),
        headers={**SERVICE, "X-Api-Key": "k1", "X-Other": "seen"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    run = answer.json()["result"]
    seen = json.loads(run["result"])
    assert "Authorization" not in seen and TOKEN not in run["result"]
    assert seen["X-Api-Key"] == ["k1"] and seen["X-Other"] == ["seen"]
    stored = stored_run(server, run["id"], bearer("viewer"))
    assert TOKEN not in json.dumps(stored)
    assert stored["headers"]["X-Api-Key"] == ["[redacted]"] and stored["headers"]["X-Other"] == [
        "seen"
    ]


def test_a_bearer_on_run_never_reaches_the_code_nor_a_viewer(server):
    code = create(server)
    answer = requests.post(server.url(f"/run/{code}"), headers=bearer("moderator"), timeout=30)
    assert answer.status_code == 200, answer.text
    run = answer.json()["result"]
    assert "Authorization" not in json.loads(run["result"])
    stored = stored_run(server, run["id"], bearer("viewer"))
    assert "Bearer moderator" not in json.dumps(stored)


@pytest.mark.parametrize("route", ["/action/endpoint", "/endpoint"])
def test_public_routes_hand_credentials_to_the_code_but_never_store_them(server, route):
    code = create(server)
    sent = {
        "Authorization": "Basic d2ViaG9vazpzZWNyZXQ=",
        "Cookie": "session=abc",
        "Proxy-Authorization": "Basic eA==",
        "X-Api-Key": "webhook-key",
    }
    answer = requests.post(server.url(f"{route}/{code}"), headers=sent, timeout=30)
    assert answer.status_code == 200, answer.text
    seen = json.loads(answer.text)
    assert seen["Authorization"] == [sent["Authorization"]] and seen["Cookie"] == [sent["Cookie"]]
    assert seen["X-Api-Key"] == ["webhook-key"]
    runs = requests.get(
        server.url("/coderun"), params={"code_id": code}, headers=bearer("viewer"), timeout=10
    )
    (run,) = runs.json()
    for name in ("Authorization", "Cookie", "Proxy-Authorization", "X-Api-Key"):
        assert run["headers"][name] == ["[redacted]"], name
    assert "d2ViaG9vazpzZWNyZXQ" not in json.dumps(
        run["headers"]
    )  # the result is the code's own choice


# --- 2. every route checks its project -------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "status"),
    [("stranger", 403), ("viewer", 403), ("contributor", 200), ("moderator", 200), ("nobody", 401)],
)
def test_run_needs_a_role_that_may_run_on_the_codes_project(server, caller, status):
    code = create(server, 'def Run(engine):\n    engine.result.set("the secret result")\n')
    headers = bearer(caller) if caller != "nobody" else {}
    answer = requests.post(server.url(f"/run/{code}"), headers=headers, timeout=30)
    assert answer.status_code == status, answer.text
    assert ("the secret result" in answer.text) is (status == 200)


def test_run_of_another_projects_code_is_forbidden(server):
    code = create(server, 'def Run(engine):\n    engine.result.set("theirs")\n', project=OTHER)
    answer = requests.post(server.url(f"/run/{code}"), headers=bearer("moderator"), timeout=30)
    assert answer.status_code == 403 and "theirs" not in answer.text
    assert (
        requests.get(
            server.url("/coderun"), params={"code_id": code}, headers=SERVICE, timeout=10
        ).json()
        == []
    )


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        (bearer("moderator"), 403),
        ({"Authorization": "Bearer wrong-metrics-token"}, 401),
        ({"Authorization": f"Bearer {METRICS_TOKEN}"}, 200),
        (SERVICE, 200),
    ],
)
def test_metrics_need_the_metrics_or_service_token(server, headers, status):
    answer = requests.get(server.url("/metrics"), headers=headers, timeout=10)
    assert answer.status_code == status, answer.text
    assert ("ca_run_count" in answer.text) is (status == 200)


def test_health_shows_pids_and_paths_only_to_authenticated_callers(server):
    anonymous = requests.get(server.url("/health"), timeout=10)
    full = requests.get(server.url("/health"), headers=SERVICE, timeout=10)
    assert anonymous.status_code == full.status_code == 200
    assert "pid" in full.json()["system"]
    assert "pid" not in anonymous.json()["system"]
    assert "/" + "tmp" not in json.dumps(anonymous.json()["sandbox"]) + json.dumps(
        anonymous.json()["runtimes"]
    )
    assert set(anonymous.json()) == set(full.json())


# --- 7. the blacklist: kept, and documented as what it is ---------------------------------------


def test_the_blacklist_still_refuses_and_is_documented_as_a_typo_guard(server):
    answer = requests.post(
        server.url("/code"),
        params={"name": "b", "language": "python", "type": "endpoint", "project_uuid": PROJECT},
        data=b"import os\ndef Run(engine):\n    os.system('true')\n",
        headers=SERVICE,
        timeout=30,
    )
    assert answer.status_code == 400 and "os.system" in answer.json()["message"]
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    securing = readme[
        readme.index("## Securing a deployment") : readme.index("### Projects and permissions")
    ]
    assert "The blacklist is not a security control" in securing
    (row,) = [
        line for line in readme.splitlines() if line.startswith("| `FLOWS_CODE_ACTIONS_BLACKLIST`")
    ]
    assert "not a security control" in row
