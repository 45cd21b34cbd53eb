"""Bad input gets a clear 4xx naming the problem and never leaves a partial row."""

from __future__ import annotations

import falcon.testing
import pytest

from codeactions_core.services.codes import MAX_SOURCE_BYTES
from codeactions_core.web.app import create_app
from tests.support.samples import PYTHON_ACTION

VALID = {"name": "a", "language": "python", "type": "endpoint", "project_uuid": "P1"}


def without(key: str) -> dict:
    return {k: v for k, v in VALID.items() if k != key}


def assert_refused(result, status: int, *words: str) -> None:
    assert result.status_code == status, result.text
    message = result.json["message"]
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


@pytest.fixture
def no_code_stored(services):
    """After the test: nothing was stored for the projects the requests named."""
    yield
    for project in ("P1", "P2", ""):
        assert services.store.codes.list_by_project(project) == []


@pytest.mark.usefixtures("no_code_stored")
class TestCreateRefusals:
    @pytest.mark.parametrize("missing", ["name", "language", "type", "project_uuid"])
    def test_missing_parameter(self, client, missing):
        assert_refused(
            client.simulate_post("/code", params=without(missing), body="x"),
            400,
            missing,
            "required",
        )

    def test_blank_parameter(self, client):
        assert_refused(
            client.simulate_post("/code", params={**VALID, "name": "   "}, body="x"), 400, "name"
        )

    def test_invalid_type(self, client):
        assert_refused(
            client.simulate_post("/code", params={**VALID, "type": "cron"}, body="x"),
            400,
            "'cron'",
            "type",
        )

    def test_invalid_language(self, client):
        assert_refused(
            client.simulate_post("/code", params={**VALID, "language": "cobol"}, body="x"),
            400,
            "'cobol'",
            "language",
        )

    @pytest.mark.parametrize("timeout", ["abc", "1.5", "10s", "1e3"])
    def test_non_integer_timeout(self, client, timeout):
        assert_refused(
            client.simulate_post("/code", params={**VALID, "timeout": timeout}, body="x"),
            400,
            "timeout",
            repr(timeout),
        )

    @pytest.mark.parametrize("timeout", [1.5, True, "x", [1]])
    def test_non_integer_timeout_in_json(self, client, timeout):
        body = {**VALID, "source": "x", "timeout": timeout}
        assert_refused(client.simulate_post("/code", json=body), 400, "timeout")

    def test_source_of_one_mebibyte(self, client):
        assert_refused(
            client.simulate_post("/code", params=VALID, body="x" * MAX_SOURCE_BYTES),
            400,
            "source",
            "1048576",
        )

    def test_source_of_one_mebibyte_in_json(self, client):
        body = {**VALID, "source": "é" * (MAX_SOURCE_BYTES // 2)}
        assert_refused(client.simulate_post("/code", json=body), 400, "source", "1 MiB")

    def test_source_with_a_nul_character(self, client):
        assert_refused(client.simulate_post("/code", params=VALID, body="print(1)\x00"), 400, "NUL")

    def test_body_that_is_not_utf8(self, client):
        assert_refused(
            client.simulate_post("/code", params=VALID, body=b"print('\xff')"), 400, "UTF-8"
        )

    @pytest.mark.parametrize(
        "body", ['{"source": ' + "[" * 300 + "]" * 300 + "}", '[{"a": "\\ud800"}]']
    )
    def test_hostile_json_is_refused_whatever_it_was_meant_to_be(self, client, body):
        result = client.simulate_post(
            "/code", params=VALID, body=body, headers={"Content-Type": "application/json"}
        )
        assert result.status_code == 400 and (
            "nested" in result.json["message"] or "surrogate" in result.json["message"]
        )

    @pytest.mark.parametrize("field", ["name", "project_uuid"])
    def test_json_field_of_the_wrong_type(self, client, field):
        assert_refused(
            client.simulate_post("/code", json={**VALID, "source": "x", field: 12}),
            400,
            field,
            "string",
        )

    def test_name_too_long(self, client):
        assert_refused(
            client.simulate_post("/code", params={**VALID, "name": "n" * 256}, body="x"),
            400,
            "name",
            "255",
        )


@pytest.mark.parametrize("body", ['{"source": ', '["print(1)"]', '{"name": "a"}'])
def test_a_json_body_that_is_not_the_json_form_is_raw_source(client, body):
    """As the old service stored any body (issue 12): not refused, kept as the source."""
    result = client.simulate_post(
        "/code", params=VALID, body=body, headers={"Content-Type": "application/json"}
    )
    assert (result.status_code, result.json["source"]) == (201, body)


def test_source_just_under_the_limit_is_accepted(client):
    result = client.simulate_post("/code", params=VALID, body="x" * (MAX_SOURCE_BYTES - 1))
    assert result.status_code == 201
    assert len(result.json["source"]) == MAX_SOURCE_BYTES - 1


def test_blacklisted_term(settings, tmp_path):
    from codeactions_core.services.schema import ensure_schema_ready
    from codeactions_core.wiring import build_services

    services = build_services(settings.replace(blacklist=("os.system", "subprocess")))
    ensure_schema_ready(services.store)
    try:
        client = falcon.testing.TestClient(create_app(services=services))
        source = "import subprocess\ndef Run(engine): pass\n"
        assert_refused(
            client.simulate_post("/code", params=VALID, body=source), 400, "'subprocess'"
        )
        assert services.store.codes.list_by_project("P1") == []
        code = client.simulate_post("/code", params=VALID, body=PYTHON_ACTION).json
        patched = client.simulate_patch(f"/code/{code['id']}", body="os.system('id')")
        assert_refused(patched, 400, "'os.system'")
        assert services.store.codes.get(code["id"]).source == PYTHON_ACTION
    finally:
        services.close()


class TestUpdateRefusalsKeepTheCode:
    @pytest.fixture
    def code(self, create_code):
        return create_code()

    @pytest.mark.parametrize(
        ("params", "body", "words"),
        [
            ({"type": "cron"}, "", ("type", "'cron'")),
            ({"language": "cobol"}, "", ("language", "'cobol'")),
            ({"timeout": "soon"}, "", ("timeout",)),
            ({"name": "n" * 300}, "", ("name",)),
            ({}, "x" * MAX_SOURCE_BYTES, ("source",)),
        ],
    )
    def test_refused_update_changes_nothing(self, client, services, code, params, body, words):
        result = client.simulate_patch(f"/code/{code['id']}", params=params, body=body)
        assert_refused(result, 400, *words)
        assert services.store.codes.get(code["id"]).to_json() == code

    def test_hostile_json_update_keeps_the_code(self, client, services, code):
        body = '{"source": ' + "[" * 300 + "]" * 300 + "}"
        result = client.simulate_patch(
            f"/code/{code['id']}", body=body, headers={"Content-Type": "application/json"}
        )
        assert_refused(result, 400, "nested")
        assert services.store.codes.get(code["id"]).to_json() == code

    def test_empty_body_keeps_the_source(self, client, code):
        result = client.simulate_patch(f"/code/{code['id']}", params={"name": "renamed"}, body="")
        assert (result.status_code, result.json["source"]) == (200, code["source"])


@pytest.mark.parametrize(
    ("path", "params", "words"),
    [
        ("/code", {}, ("project_uuid", "required")),
        ("/code", {"project_uuid": "P1", "code_type": "cron"}, ("'cron'",)),
        ("/coderun", {}, ("code_id", "required")),
        ("/codelog", {}, ("run_id", "code_id")),
    ],
)
def test_listing_without_what_it_needs(client, path, params, words):
    assert_refused(client.simulate_get(path, params=params), 400, *words)


@pytest.mark.parametrize("field", ["after", "before"])
def test_unparsable_run_date(client, create_code, field):
    code = create_code()
    result = client.simulate_get("/coderun", params={"code_id": code["id"], field: "yesterday"})
    assert_refused(result, 400, field, "'yesterday'")


@pytest.mark.parametrize("page", ["abc", "0", "-1", "1.5"])
def test_bad_log_page(client, create_code, page):
    code = create_code()
    assert_refused(
        client.simulate_get("/codelog", params={"code_id": code["id"], "page": page}), 400, "page"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/code/nope",
        "/code/00000000-0000-0000-0000-000000000000",
        "/coderun/nope",
        "/coderun/1",
        "/codelog/nope",
        "/codelog/00000000-0000-0000-0000-000000000000",
        "/code/%27%3B--",
    ],
)
def test_unknown_ids_are_404_never_500(client, path):
    assert_refused(client.simulate_get(path), 404, "not found")


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_writing_unknown_codes_is_404(client, method):
    assert_refused(client.simulate_request(method, "/code/nope", body="x"), 404, "not found")


def test_listing_runs_or_logs_of_unknown_code_or_run_is_404(client):
    assert_refused(client.simulate_get("/coderun", params={"code_id": "nope"}), 404, "code")
    assert_refused(client.simulate_get("/codelog", params={"run_id": "nope"}), 404, "run")
    assert_refused(client.simulate_get("/codelog", params={"code_id": "nope"}), 404, "code")


def test_unknown_route_and_method(client):
    assert_refused(client.simulate_get("/no/such/route"), 404, "/no/such/route")
    result = client.simulate_request("PUT", "/code")
    assert_refused(result, 405, "PUT", "GET")
    assert "POST" in result.headers["allow"]


@pytest.mark.parametrize("field", ["name", "project_uuid", "url"])
def test_a_nul_character_in_a_field(client, services, field):
    assert_refused(
        client.simulate_post("/code", params={**VALID, field: "a\x00b"}, body="x"),
        400,
        field,
        "NUL",
    )
    assert services.store.codes.list_by_project("P1") == []
