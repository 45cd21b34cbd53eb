"""The built-in step runners, http_call and tabular against real HTTP servers on loopback."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from codeactions_core.egress import EgressPolicy
from codeactions_core.flows.runners import (
    CodeRunner,
    Egress,
    HttpCallRunner,
    TabularRunner,
    WaitRunner,
)
from codeactions_core.flows.runners.tabular import method_url
from codeactions_core.flows.steps import StepContext, StepFailed, StepResult
from tests.support.echo import Answer, EchoServer, Recorded, echo_server

Seen = Recorded
LOOPBACK = Egress(EgressPolicy.from_terms(["127.0.0.1"]))
"""The test servers listen on loopback, which the egress policy denies unless allowed."""


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[Seen], Answer]], EchoServer]]:
    """Starts HTTP servers on loopback answering with ``answer(request)``; stops them at the end."""
    with ExitStack() as servers:
        yield lambda answer: servers.enter_context(echo_server(answer))


def json_reply(payload: Any, status: int = 200, content_type: str = "application/json") -> Answer:
    return Answer(
        status, headers={"Content-Type": content_type}, content=json.dumps(payload).encode()
    )


def text_reply(text: str, status: int = 200) -> Answer:
    return Answer(
        status, headers={"Content-Type": "text/plain; charset=utf-8"}, content=text.encode()
    )


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


class Log:
    """``on_log`` collecting (level, message)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __call__(self, message: Any, level: str = "info") -> None:
        self.lines.append((level, str(message)))

    def text(self) -> str:
        return "\n".join(message for _, message in self.lines)


def context(**overrides: Any) -> StepContext:
    values: dict[str, Any] = {
        "execution_id": "e1",
        "flow_id": "f1",
        "project_uuid": "P",
        "step_id": "s1",
        "lead_id": "42",
    }
    return StepContext(**{**values, **overrides})


class Sleeps:
    """A stand-in for ``time.sleep`` that records the delays asked for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def http(
    config: dict[str, Any], runner: HttpCallRunner | None = None, log: Log | None = None
) -> Any:
    return (
        (runner or HttpCallRunner(egress=LOOPBACK)).execute(config, context(), log or Log()).result
    )


# --- http_call -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_http_call_sends_the_method(serve, method):
    server = serve(lambda seen: json_reply({"method": seen.method, "path": seen.path}))
    result = http({"method": method, "url": server.at("/items/7?x=1")})
    assert result["status"] == 200
    assert result["body"] == {"method": method, "path": "/items/7?x=1"}
    assert result["headers"]["content-type"] == "application/json"


def test_http_call_defaults_to_get_and_sends_headers(serve):
    server = serve(lambda seen: text_reply("ok"))
    http(
        {
            "url": server.at(),
            "headers": {"X-Token": "abc", "Accept": "text/plain", "X-N": 3, "X-B": False},
        }
    )
    (seen,) = server.requests
    assert seen.method == "GET" and seen.body == b""
    assert (seen.headers["x-token"], seen.headers["accept"]) == ("abc", "text/plain")
    assert (seen.headers["x-n"], seen.headers["x-b"]) == ("3", "false")
    assert seen.headers["user-agent"].startswith("codeactions-flows/")


def test_http_call_sends_a_dict_body_as_json(serve):
    server = serve(lambda seen: json_reply({"ok": True}, status=201))
    result = http({"method": "POST", "url": server.at(), "body": {"name": "Ana", "tags": ["é"]}})
    (seen,) = server.requests
    assert seen.headers["content-type"] == "application/json"
    assert seen.json() == {"name": "Ana", "tags": ["é"]}
    assert (result["status"], result["body"]) == (201, {"ok": True})


def test_http_call_sends_a_string_body_as_is(serve):
    server = serve(lambda seen: text_reply("fine"))
    http({"method": "PUT", "url": server.at(), "body": "a=1&b=2"})
    http(
        {
            "method": "PUT",
            "url": server.at(),
            "body": "<x/>",
            "headers": {"content-type": "application/xml"},
        }
    )
    first, second = server.requests
    assert (first.body, first.headers["content-type"]) == (b"a=1&b=2", "text/plain; charset=utf-8")
    assert (second.body, second.headers["content-type"]) == (b"<x/>", "application/xml")


@pytest.mark.parametrize(
    ("reply", "body"),
    [
        (text_reply("plain text ã"), "plain text ã"),
        (json_reply([1, 2]), [1, 2]),
        (json_reply({"a": 1}, content_type="application/problem+json"), {"a": 1}),
        (Answer(headers={"Content-Type": "application/json"}, content=b"{not json"), "{not json"),
        (
            Answer(
                headers={"Content-Type": "text/plain; charset=latin-1"},
                content="olá".encode("latin-1"),
            ),
            "olá",
        ),
        (Answer(204, content=b""), ""),
    ],
)
def test_http_call_parses_json_responses_and_keeps_text(serve, reply, body):
    server = serve(lambda seen: reply)
    assert http({"url": server.at()})["body"] == body


def test_http_call_times_out(serve):
    release = threading.Event()
    server = serve(lambda seen: Answer(hold=release))
    log = Log()
    try:
        with pytest.raises(StepFailed) as raised:
            http({"url": server.at("/slow?token=s3cret"), "timeout": 0.2}, log=log)
    finally:
        release.set()
    assert raised.value.message == f"GET {server.at('/slow')}: timed out after 0.2 s"
    assert "s3cret" not in log.text()


def test_http_call_retries_a_5xx_then_succeeds(serve):
    def flaky(seen: Seen) -> Answer:
        return json_reply(
            {"try": len(server.requests)}, status=503 if len(server.requests) < 3 else 200
        )

    server = serve(flaky)
    sleeps, log = Sleeps(), Log()
    result = http(
        {"url": server.at(), "retry": {"max_attempts": 4, "delay": 0.5}},
        HttpCallRunner(sleep=sleeps, egress=LOOPBACK),
        log,
    )
    assert (result["status"], result["body"]) == (200, {"try": 3})
    assert len(server.requests) == 3
    assert sleeps.delays == [0.5, 0.5]
    assert [message for _, message in log.lines if message.startswith("attempt")] == [
        f"attempt {n}/4: GET {server.at('/')}" for n in (1, 2, 3)
    ]


def test_http_call_gives_up_after_the_last_attempt(serve):
    server = serve(lambda seen: text_reply("overloaded " * 50, status=500))
    sleeps = Sleeps()
    with pytest.raises(StepFailed) as raised:
        http(
            {"url": server.at(), "retry": {"max_attempts": 3, "delay": 2}},
            HttpCallRunner(sleep=sleeps, egress=LOOPBACK),
        )
    assert len(server.requests) == 3 and sleeps.delays == [2, 2]
    message = raised.value.message
    assert message.startswith(f"GET {server.at('/')} answered HTTP 500: overloaded overloaded")
    assert message.endswith("… (after 3 attempts)") and len(message) < 300


def test_http_call_never_retries_a_4xx(serve):
    server = serve(lambda seen: json_reply({"error": "no such lead"}, status=404))
    sleeps = Sleeps()
    with pytest.raises(StepFailed) as raised:
        http(
            {"url": server.at("/lead/9"), "retry": {"max_attempts": 5, "delay": 1}},
            HttpCallRunner(sleep=sleeps, egress=LOOPBACK),
        )
    assert len(server.requests) == 1 and sleeps.delays == []
    assert (
        raised.value.message
        == f'GET {server.at("/lead/9")} answered HTTP 404: {{"error": "no such lead"}}'
    )


def test_http_call_retries_a_refused_connection():
    sleeps, log = Sleeps(), Log()
    url = closed_port_url()
    with pytest.raises(StepFailed) as raised:
        http(
            {"url": url, "retry": {"max_attempts": 2, "delay": 0}},
            HttpCallRunner(sleep=sleeps, egress=LOOPBACK),
            log,
        )
    assert raised.value.message.startswith(f"GET {url}: connection failed: ")
    assert raised.value.message.endswith("(after 2 attempts)")
    assert sleeps.delays == [0]
    assert sum(level == "error" for level, _ in log.lines) == 2


def test_http_call_caps_the_response_size(serve):
    big = b"x" * (1024 * 1024 + 1)
    server = serve(
        lambda seen: Answer(
            headers={"Content-Type": "text/plain"},
            content=big if seen.path == "/big" else b"x" * 2000,
        )
    )
    with pytest.raises(StepFailed, match=f"larger than {1024 * 1024} bytes"):
        http({"url": server.at("/big")})
    with pytest.raises(StepFailed, match="larger than 1000 bytes"):
        http({"url": server.at("/small")}, HttpCallRunner(max_response_bytes=1000, egress=LOOPBACK))
    assert (
        len(
            http(
                {"url": server.at("/small")},
                HttpCallRunner(max_response_bytes=2000, egress=LOOPBACK),
            )["body"]
        )
        == 2000
    )


def test_http_call_caps_a_body_without_content_length(serve):
    class Streaming(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()  # HTTP/1.0: the body ends when the connection closes
            self.wfile.write(b"y" * 5000)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Streaming)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    try:
        with pytest.raises(StepFailed, match="larger than 4096 bytes"):
            http(
                {"url": f"http://127.0.0.1:{server.server_address[1]}/"},
                HttpCallRunner(max_response_bytes=4096, egress=LOOPBACK),
            )
    finally:
        server.shutdown()
        server.server_close()


def test_http_call_follows_http_redirects_only(serve):
    def redirect(seen: Seen) -> Answer:
        if seen.path == "/old":
            return Answer(302, headers={"Location": "/new"}, content=b"")
        if seen.path == "/evil":
            return Answer(302, headers={"Location": "file:///etc/passwd"}, content=b"")
        if seen.path == "/ftp":
            return Answer(301, headers={"Location": "ftp://127.0.0.1/secret"}, content=b"")
        return text_reply(f"at {seen.path}")

    server = serve(redirect)
    assert http({"url": server.at("/old")})["body"] == "at /new"
    with pytest.raises(StepFailed, match="HTTP 302: the redirect was not followed: .*not allowed"):
        http({"url": server.at("/evil")})
    with pytest.raises(StepFailed, match="a redirect to a non-HTTP URL was refused"):
        http({"url": server.at("/ftp")})


def test_http_call_refuses_other_schemes_when_run():
    with pytest.raises(StepFailed, match="is not an http:// or https:// URL"):
        http({"url": "file:///etc/passwd"})


# --- tabular ---------------------------------------------------------------------------------


def bitrix(serve, reply: Answer | None = None) -> EchoServer:
    return serve(lambda seen: reply or json_reply({"result": True, "time": {"duration": 0.01}}))


def tabular(config: dict[str, Any], log: Log | None = None, **context_values: Any) -> Any:
    return (
        TabularRunner(egress=LOOPBACK)
        .execute(config, context(**context_values), log or Log())
        .result
    )


def test_tabular_posts_crm_lead_update(serve):
    server = bitrix(serve)
    log = Log()
    config = {
        "webhook_url": server.at("/rest/1/s3cretToken/"),
        "field": "STATUS_ID",
        "value": "QUALIFIED",
        "additional_fields": [
            {"field": "UF_CRM_SCORE", "value": 9},
            {"field": "OPENED", "value": True},
        ],
    }
    result = tabular(config, log)
    assert result == {"result": True, "time": {"duration": 0.01}}
    (seen,) = server.requests
    assert (seen.method, seen.path) == ("POST", "/rest/1/s3cretToken/crm.lead.update.json")
    assert seen.headers["content-type"] == "application/json"
    assert seen.json() == {
        "id": 42,
        "fields": {"STATUS_ID": "QUALIFIED", "UF_CRM_SCORE": 9, "OPENED": True},
    }
    assert "s3cretToken" not in log.text() and "crm.lead.update" in log.text()


def test_tabular_sends_a_non_numeric_lead_id_as_text(serve):
    server = bitrix(serve)
    tabular({"webhook_url": server.at("/rest/1/t"), "field": "TITLE", "value": 1.5}, lead_id="L-7")
    assert server.requests[0].path == "/rest/1/t/crm.lead.update.json"
    assert server.requests[0].json() == {"id": "L-7", "fields": {"TITLE": 1.5}}


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("https://b.test/rest/1/tok/", "https://b.test/rest/1/tok/crm.lead.update.json"),
        ("https://b.test/rest/1/tok", "https://b.test/rest/1/tok/crm.lead.update.json"),
        (
            "https://b.test/rest/1/tok/crm.deal.update.json",
            "https://b.test/rest/1/tok/crm.deal.update.json",
        ),
        ("https://b.test/rest/1/tok/crm.lead.update", "https://b.test/rest/1/tok/crm.lead.update"),
        ("https://b.test", "https://b.test/crm.lead.update.json"),
    ],
)
def test_tabular_appends_the_method_unless_named(given, used):
    assert method_url(given) == used


def test_tabular_uses_a_named_method_as_is(serve):
    server = bitrix(serve)
    tabular(
        {"webhook_url": server.at("/rest/1/t/crm.deal.update.json"), "field": "A", "value": "b"}
    )
    assert server.requests[0].path == "/rest/1/t/crm.deal.update.json"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            json_reply({"error": "ERROR_CORE", "error_description": "Not found"}, status=400),
            "failed with Bitrix error ERROR_CORE: Not found (HTTP 400)",
        ),
        (
            json_reply({"error": "QUERY_LIMIT_EXCEEDED"}, status=200),
            "failed with Bitrix error QUERY_LIMIT_EXCEEDED (HTTP 200)",
        ),
        (
            text_reply(
                '{"error": "expired_token", "error_description": "The access token expired"}',
                status=401,
            ),
            "failed with Bitrix error expired_token: The access token expired (HTTP 401)",
        ),
        (
            text_reply("<html>Bad gateway</html>", status=502),
            "answered HTTP 502: <html>Bad gateway</html>",
        ),
        (text_reply("<html>ok?</html>"), "did not answer JSON: <html>ok?</html>"),
    ],
)
def test_tabular_fails_with_bitrix_errors(serve, reply, message):
    server = bitrix(serve, reply)
    with pytest.raises(StepFailed) as raised:
        tabular({"webhook_url": server.at("/rest/1/s3cretToken/"), "field": "A", "value": "b"})
    assert raised.value.message == f"Bitrix crm.lead.update on 127.0.0.1 {message}"
    assert "s3cretToken" not in raised.value.message


@pytest.mark.parametrize("lead_id", [None, ""])
def test_tabular_needs_a_lead(serve, lead_id):
    server = bitrix(serve)
    with pytest.raises(StepFailed, match="need a lead id"):
        tabular(
            {"webhook_url": server.at("/rest/1/t/"), "field": "A", "value": "b"}, lead_id=lead_id
        )
    assert server.requests == []


def test_tabular_reports_an_unreachable_webhook():
    with pytest.raises(StepFailed) as raised:
        tabular(
            {
                "webhook_url": closed_port_url() + "rest/1/tok/",
                "field": "A",
                "value": "b",
                "timeout": "5",
            }
        )
    assert raised.value.message.startswith(
        "Bitrix crm.lead.update on 127.0.0.1: connection failed: "
    )


# --- wait ------------------------------------------------------------------------------------


@pytest.fixture
def no_sleeping(monkeypatch):
    def refuse(seconds: float) -> None:
        raise AssertionError(f"slept {seconds} s")

    monkeypatch.setattr("time.sleep", refuse)


@pytest.mark.parametrize(
    ("seconds", "resume_after"), [(3600, 3600.0), (0.5, 0.5), ("90", 90.0), ("1.5", 1.5)]
)
def test_wait_asks_to_resume_later_without_sleeping(no_sleeping, seconds, resume_after):
    log = Log()
    result = WaitRunner().execute({"seconds": seconds, "reason": "cool down"}, context(), log)
    assert result == StepResult(
        result={"waited_seconds": resume_after, "reason": "cool down"}, resume_after=resume_after
    )
    assert log.lines == [("info", f"waiting {resume_after:g} s: cool down")]


def test_wait_reason_is_optional(no_sleeping):
    assert WaitRunner().execute({"seconds": 1}, context(), Log()).result == {
        "waited_seconds": 1,
        "reason": "",
    }


@pytest.mark.parametrize("seconds", [0, -1, 3601, "0", "soon", True])
def test_wait_refuses_a_bad_resolved_value(no_sleeping, seconds):
    with pytest.raises(StepFailed, match="config.seconds"):
        WaitRunner().execute({"seconds": seconds}, context(), Log())


# --- code ------------------------------------------------------------------------------------


def test_code_runs_the_code_with_string_params():
    calls = []

    def run_code(code_id: str, params: dict[str, str]) -> Any:
        calls.append((code_id, params))
        return {"greeting": f"hi {params.get('name')}"}

    config = {
        "code_id": "c-1",
        "params": {"name": "Ana", "n": 3, "ok": True, "none": None, "obj": {"a": [1]}},
    }
    result = CodeRunner().execute(config, context(run_code=run_code), Log())
    assert result == StepResult(result={"greeting": "hi Ana"})
    assert calls == [
        ("c-1", {"name": "Ana", "n": "3", "ok": "true", "none": "", "obj": '{"a":[1]}'})
    ]
    CodeRunner().execute({"code_id": "c-2"}, context(run_code=run_code), Log())
    assert calls[-1] == ("c-2", {})


def test_code_fails_without_a_code_runner():
    with pytest.raises(StepFailed, match="no code runner"):
        CodeRunner().execute({"code_id": "c-1"}, context(run_code=None), Log())


def test_code_lets_the_code_failure_through():
    def run_code(code_id: str, params: dict[str, str]) -> Any:
        raise StepFailed(f"code {code_id} failed: ZeroDivisionError")

    with pytest.raises(StepFailed, match="code c-1 failed: ZeroDivisionError"):
        CodeRunner().execute({"code_id": "c-1"}, context(run_code=run_code), Log())
