"""Project secrets and code-shaped responses, piece by piece: the key box, masking, the
header checks, the outcome reading, and the API without a key (issue 15, items 2 and 3)."""

from __future__ import annotations

import base64
import json

import pytest

from codeactions_core.errors import ConfigurationError
from codeactions_core.execution.outcome import outcome_from_report
from codeactions_core.execution.response import media_type, response_headers
from codeactions_core.execution.runtime import LogLine, Outcome
from codeactions_core.execution.sandbox import Report
from codeactions_core.model import LogType, RunStatus
from codeactions_core.secret_box import SecretBox, UndecryptableSecret, new_key
from codeactions_core.services.secret_masking import mask_outcome
from codeactions_core.settings import Settings
from codeactions_core.testing.api import api_client

VALUE = "hunter2-secret"


def test_the_box_encrypts_and_rotates_to_the_newest_key():
    old, new = new_key(), new_key()
    token = SecretBox([old]).encrypt(VALUE)
    assert VALUE not in token and SecretBox([old]).decrypt(token) == VALUE
    rotated = SecretBox([new, old]).rotate(token)
    assert SecretBox([new]).decrypt(rotated) == VALUE
    with pytest.raises(UndecryptableSecret):
        SecretBox([new]).decrypt(token)
    with pytest.raises(UndecryptableSecret):
        SecretBox([old]).decrypt(rotated)


@pytest.mark.parametrize(
    "raw",
    ["not-a-key", "c2hvcnQ=", f"{new_key()},nope"],
    ids=["not base64", "short", "one bad of two"],
)
def test_a_bad_key_setting_is_refused_naming_it(raw):
    with pytest.raises(ConfigurationError, match="FLOWS_CODE_ACTIONS_SECRETS_KEY"):
        Settings.from_env({"FLOWS_CODE_ACTIONS_SECRETS_KEY": raw})
    assert raw not in repr(Settings(secrets_key=(raw,)))


def test_masking_covers_every_place_and_form():
    tricky = 'p"ä\\ss-word'
    binary = base64.b64encode(b"\x89" + VALUE.encode() + b"\xff").decode()
    outcome = Outcome(
        status=RunStatus.COMPLETED,
        result=json.dumps({"k": tricky, "both": VALUE + "-tail"}),
        extra={"headers": {"X-Token": [VALUE]}, "nested": [{"x": f"a {VALUE} b"}]},
        logs=[
            LogLine(LogType.INFO, f"value {VALUE}"),
            LogLine(LogType.INFO, json.dumps(tricky, ensure_ascii=False)),
        ],
        stdout=f"{VALUE}\n",
        stderr=f"err {tricky}",
        content_type=f"text/x; v={VALUE}",
    )
    masked = mask_outcome(outcome, [VALUE, tricky, VALUE + "-tail"])
    text = json.dumps(
        [
            masked.result,
            masked.content_type,
            masked.extra,
            [line.content for line in masked.logs],
            masked.stdout,
            masked.stderr,
        ]
    )
    assert VALUE not in text and "ss-word" not in text
    assert json.loads(masked.result) == {"k": "***", "both": "***"}  # the longest form first
    assert masked.extra["headers"]["X-Token"] == ["***"] and masked.stdout == "***\n"
    as_file = mask_outcome(
        Outcome(status=RunStatus.COMPLETED, result=binary, extra={"result_encoding": "base64"}),
        [VALUE],
    )
    assert base64.b64decode(as_file.result) == b"\x89***\xff"
    assert mask_outcome(outcome, []) is outcome


@pytest.mark.parametrize(
    "name",
    [
        "Connection",
        "transfer-encoding",
        "Content-Length",
        "Upgrade",
        "Keep-Alive",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Host",
    ],
)
def test_hop_by_hop_and_framing_headers_are_refused(name):
    accepted, problems = response_headers({name: "x", "X-Fine": ["1", "2"]})
    assert accepted == {"X-Fine": ["1", "2"]}
    refusal = f"response header {name!r} is refused: hop-by-hop and framing headers are set"
    assert problems == [refusal + " by the server only"]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-A": "1\r\nSet-Cookie: evil=1"}, "CR, LF"),
        ({"X-A": "line\nbreak"}, "CR, LF"),
        ({"X-A": "nul\x00"}, "CR, LF"),
        ({"X-A": "café"}, "visible ASCII"),
        ({"Bad Name": "x"}, "not a valid HTTP header name"),
        ({"X-Bad\r\nInjected": "x"}, "not a valid HTTP header name"),
        ("Location: /x", "must be an object"),
        ({f"X-{n}": "v" for n in range(70)}, "at most 64 headers"),
    ],
)
def test_invalid_headers_are_refused_naming_the_problem(headers, expected):
    accepted, problems = response_headers(headers)
    assert problems and expected in problems[0]
    assert all(
        "\r" not in value and "\n" not in value for values in accepted.values() for value in values
    )


@pytest.mark.parametrize(
    ("set_as", "answered"),
    [
        ("json", "application/json; charset=UTF-8"),
        ("HTML", "text/html; charset=UTF-8"),
        ("text", "text/plain; charset=UTF-8"),
        ("whatever", "text/plain; charset=UTF-8"),
        ("image/png", "image/png"),
        ("text/csv; charset=utf-8", "text/csv; charset=utf-8"),
        ('multipart/mixed; boundary="a b"', 'multipart/mixed; boundary="a b"'),
        ("text/html\r\nX-Injected: 1", "text/plain; charset=UTF-8"),
        ("image/", "text/plain; charset=UTF-8"),
    ],
)
def test_content_types(set_as, answered):
    assert media_type(set_as) == answered


def report(document: dict) -> Report:
    return Report(outcome={"ok": True, "has_run": True, "logs": [], **document})


def test_the_outcome_keeps_valid_headers_and_records_refusals():
    outcome = outcome_from_report(
        report(
            {
                "result": base64.b64encode(b"\x89PNG").decode(),
                "result_encoding": "base64",
                "status_code": 201,
                "content_type": "text",
                "headers": {"content-type": ["image/png"], "Location": ["/f"], "Upgrade": ["h2c"]},
            }
        ),
        timeout=10,
        result_limit=1000,
    )
    assert outcome.status is RunStatus.COMPLETED
    assert outcome.content_type == "image/png" and outcome.extra["headers"] == {"Location": ["/f"]}
    assert (
        outcome.extra["result_encoding"] == "base64"
        and base64.b64decode(outcome.result) == b"\x89PNG"
    )
    assert [line.content for line in outcome.logs] == outcome.extra["response_errors"]
    assert "'Upgrade' is refused" in outcome.extra["response_errors"][0]
    text = outcome_from_report(
        report({"result": base64.b64encode("olá".encode()).decode(), "result_encoding": "base64"}),
        timeout=10,
        result_limit=1000,
    )
    assert (text.result, "result_encoding" in text.extra) == ("olá", False)
    old = outcome_from_report(
        report({"result": "x", "status_code": 200, "content_type": "json"}),
        timeout=10,
        result_limit=1000,
    )
    assert (old.status_code, old.content_type, old.extra) == (200, "json", {})


SECRET_READER = 'def Run(engine):\n    engine.result.set(repr(engine.secrets.get("API_TOKEN")))\n'
CREATE = {"name": "s", "language": "python", "type": "endpoint", "project_uuid": "P"}


def test_without_a_key_secrets_are_refused_naming_the_setting(tmp_path):
    with api_client(Settings(data_dir=str(tmp_path))) as (client, _):
        put = client.simulate_put("/projects/P/secrets/API_TOKEN", json={"value": VALUE})
        assert put.status_code == 503
        assert "FLOWS_CODE_ACTIONS_SECRETS_KEY" in put.json["message"]
        assert client.simulate_get("/projects/P/secrets").json == []
        code = client.simulate_post("/code", params=CREATE, body=SECRET_READER).json
        assert client.simulate_get(f"/action/endpoint/{code['id']}").text == "None"


def test_a_secret_no_key_opens_is_left_out_of_runs(tmp_path, caplog):
    with api_client(Settings(data_dir=str(tmp_path), secrets_key=(new_key(),))) as (client, _):
        assert (
            client.simulate_put("/projects/P/secrets/API_TOKEN", json={"value": VALUE}).status_code
            == 200
        )
    with api_client(Settings(data_dir=str(tmp_path), secrets_key=(new_key(),))) as (client, _):
        code = client.simulate_post("/code", params=CREATE, body=SECRET_READER).json
        assert client.simulate_get(f"/action/endpoint/{code['id']}").text == "None"
    assert "secret API_TOKEN of project P is left out of the run" in caplog.text
    assert VALUE not in caplog.text


def test_python_headers_of_the_wrong_type_fail_the_run_clearly(tmp_path):
    with api_client(Settings(data_dir=str(tmp_path))) as (client, _):
        code = client.simulate_post(
            "/code",
            params=CREATE,
            body=('def Run(engine):\n    engine.result.set("x", headers="Location: /x")\n'),
        ).json
        answer = client.simulate_get(f"/action/endpoint/{code['id']}")
        assert answer.status_code == 500
        assert "TypeError: headers must be a dict of name to value" in answer.json["message"]


def test_a_flow_code_step_reads_the_secret_and_its_record_is_masked(tmp_path):
    with api_client(Settings(data_dir=str(tmp_path), secrets_key=(new_key(),))) as (
        client,
        services,
    ):
        services.start()  # drives flow executions in this process, as a server without a broker
        assert (
            client.simulate_put("/projects/P/secrets/API_TOKEN", json={"value": VALUE}).status_code
            == 200
        )
        code = client.simulate_post(
            "/code",
            params=CREATE,
            body=(
                "def Run(engine):\n"
                '    value = engine.secrets.get("API_TOKEN")\n'
                '    answer = {"value": value, "reversed": value[::-1]}\n'
                '    engine.result.set(answer, content_type="json")\n'
            ),
        ).json
        flow = client.simulate_post("/flows", json={"name": "f", "project_uuid": "P"}).json["id"]
        steps = [{"id": "s", "type": "code", "config": {"code_id": code["id"]}}]
        assert (
            client.simulate_post(f"/flows/{flow}/versions", json={"steps": steps}).status_code
            == 201
        )
        assert client.simulate_post(f"/flows/{flow}/versions/1/publish").status_code == 200
        execution = client.simulate_post(
            f"/flows/{flow}/executions", params={"wait": "true"}, json={}
        )
        assert execution.json["status"] == "completed", execution.text
        assert execution.json["result"] == {"s": {"value": "***", "reversed": VALUE[::-1]}}
        assert VALUE not in execution.text
