"""The code routes of COMPAT.md through the Falcon app (SQLite store)."""

from __future__ import annotations

import json
import re

from tests.support.samples import PYTHON_ACTION

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
CODE_KEYS = {
    "id",
    "name",
    "type",
    "source",
    "language",
    "url",
    "project_uuid",
    "timeout",
    "created_at",
    "updated_at",
    "version",
}


def test_create_returns_201_with_the_code_json(client):
    result = client.simulate_post(
        "/code",
        params={
            "name": "a",
            "language": "python",
            "type": "endpoint",
            "project_uuid": "P",
            "timeout": "30",
        },
        body=PYTHON_ACTION,
        headers={"Content-Type": "text/x-python"},
    )
    assert result.status_code == 201
    code = result.json
    assert set(code) == CODE_KEYS
    assert (code["name"], code["language"], code["type"], code["project_uuid"]) == (
        "a",
        "python",
        "endpoint",
        "P",
    )
    assert (code["source"], code["timeout"], code["url"]) == (PYTHON_ACTION, 30, "")
    assert RFC3339.match(code["created_at"]) and RFC3339.match(code["updated_at"])


def test_created_code_comes_back_by_get_and_by_list(client, create_code):
    code = create_code()
    assert client.simulate_get(f"/code/{code['id']}").json == code
    listed = client.simulate_get("/code", params={"project_uuid": "P1"})
    assert listed.status_code == 200
    assert listed.json == [code]


def test_json_body_create(client):
    body = {
        "name": "j",
        "type": "flow",
        "language": "javascript",
        "project_uuid": "P",
        "source": "exports.Run = () => 1",
        "timeout": 10,
    }
    result = client.simulate_post("/code", json=body)
    assert result.status_code == 201, result.text
    assert {k: result.json[k] for k in body} == body


def test_json_body_fields_override_the_query(client):
    result = client.simulate_post(
        "/code",
        params={"name": "from-query", "type": "flow", "language": "python", "project_uuid": "P"},
        json={"name": "from-json", "source": "print(1)"},
    )
    assert result.status_code == 201
    assert (result.json["name"], result.json["type"]) == ("from-json", "flow")


def test_admin_create_and_update(client):
    created = client.simulate_post(
        "/admin/code",
        params={"name": "a", "language": "go", "type": "flow", "project_uuid": "P"},
        body="package main",
    )
    assert created.status_code == 201
    updated = client.simulate_patch(f"/admin/code/{created.json['id']}", params={"name": "b"})
    assert (updated.status_code, updated.json["name"]) == (200, "b")
    assert client.simulate_get("/admin/code").status_code == 405


def test_list_filters_by_code_type_and_project(client, create_code):
    flow = create_code(type="flow", name="f")
    endpoint = create_code(type="endpoint", name="e")
    create_code(project_uuid="P2")
    flows = client.simulate_get("/code", params={"project_uuid": "P1", "code_type": "flow"}).json
    assert [c["id"] for c in flows] == [flow["id"]]
    everything = client.simulate_get("/code", params={"project_uuid": "P1"}).json
    assert {c["id"] for c in everything} == {flow["id"], endpoint["id"]}
    assert client.simulate_get("/code", params={"project_uuid": "nobody"}).json == []


def test_patch_changes_only_what_is_sent(client, create_code):
    code = create_code(timeout="20")
    result = client.simulate_patch(f"/code/{code['id']}", params={"name": "renamed"})
    assert result.status_code == 200
    assert (result.json["name"], result.json["source"], result.json["timeout"]) == (
        "renamed",
        code["source"],
        20,
    )
    assert result.json["type"] == code["type"] and result.json["language"] == code["language"]


def test_patch_source_and_timeout_query_type_and_language_only_checked(client, create_code):
    """type and language in the query are validated, not applied (the old service's PATCH)."""
    code = create_code()
    result = client.simulate_patch(
        f"/code/{code['id']}",
        params={"type": "flow", "language": "javascript", "timeout": "400"},
        body="print(3)",
    )
    assert result.status_code == 200
    assert (result.json["type"], result.json["language"], result.json["timeout"]) == (
        "endpoint",
        "python",
        300,
    )
    assert result.json["source"] == "print(3)"
    assert client.simulate_get(f"/code/{code['id']}").json == result.json
    bad = client.simulate_patch(
        f"/code/{code['id']}", params={"language": "cobol"}, body="print(4)"
    )
    assert bad.status_code == 400 and "cobol" in bad.json["message"]
    assert client.simulate_get(f"/code/{code['id']}").json["source"] == "print(3)"


def test_patch_json_body_applies_type_and_language(client, create_code):
    code = create_code()
    result = client.simulate_patch(
        f"/code/{code['id']}",
        json={"type": "flow", "language": "javascript", "source": "exports.Run = () => {}"},
    )
    assert result.status_code == 200, result.text
    assert (result.json["type"], result.json["language"]) == ("flow", "javascript")


def test_patch_with_json_body(client, create_code):
    code = create_code()
    result = client.simulate_patch(f"/code/{code['id']}", json={"name": "n2", "source": "print(2)"})
    assert (result.status_code, result.json["name"], result.json["source"]) == (
        200,
        "n2",
        "print(2)",
    )


def test_delete(client, create_code):
    code = create_code()
    result = client.simulate_delete(f"/code/{code['id']}")
    assert (result.status_code, result.text) == (200, "")
    assert client.simulate_get(f"/code/{code['id']}").status_code == 404
    assert client.simulate_delete(f"/code/{code['id']}").status_code == 404


def test_timeout_rules(client, create_code):
    assert create_code(timeout="0")["timeout"] == 60
    assert create_code(timeout="1")["timeout"] == 5
    assert create_code(timeout="301")["timeout"] == 300
    assert create_code(timeout="-7")["timeout"] == 5
    assert create_code()["timeout"] == 60


def test_unicode_source_survives(client, create_code):
    source = "def Run(engine):\n    engine.result.set('çà 日本 🎉')\n"
    code = create_code(source=source)
    assert client.simulate_get(f"/code/{code['id']}").json["source"] == source


def test_liveness_routes(client):
    for path in ("/", "/healthz"):
        result = client.simulate_get(path)
        assert (result.status_code, result.json) == (200, {"status": "ok"})


def test_health_reports_the_database(client):
    result = client.simulate_get("/health")
    assert result.status_code == 200
    assert result.json["status"] == "healthy"
    assert result.json["services"]["database"]["status"] == "healthy"


def test_error_bodies_are_json_messages(client):
    result = client.simulate_get("/code/does-not-exist")
    assert result.status_code == 404
    assert result.headers["content-type"].startswith("application/json")
    assert json.loads(result.text) == {"message": "code 'does-not-exist' not found"}
