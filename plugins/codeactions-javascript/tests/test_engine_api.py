"""The engine API of ENGINE_API.md, JavaScript section, in real runs."""

from __future__ import annotations

import json

from codeactions_core.model import LogType, RunStatus


def log_lines(outcome) -> list[tuple[LogType, str]]:
    return [(line.type, line.content) for line in outcome.logs]


def test_the_documented_example(run):
    source = """
exports.Run = async function (engine) {
  const who = engine.params.get("name");
  engine.log.info(`hello ${who}`);
  const waited = await new Promise((resolve) => setTimeout(() => resolve("later"), 5));
  engine.result.set({ hi: who, waited, pairs: [...engine.params] }, 201, "json");
};
"""
    outcome = run(source, params={"name": "ana", "x": "1"})
    assert outcome.status is RunStatus.COMPLETED
    assert json.loads(outcome.result) == {
        "hi": "ana",
        "waited": "later",
        "pairs": [["name", "ana"], ["x", "1"]],
    }
    assert (outcome.status_code, outcome.content_type, outcome.extra) == (201, "json", {})
    assert log_lines(outcome) == [(LogType.INFO, "hello ana")]


def test_headers_are_read_in_any_letter_case(run):
    source = """
exports.Run = (engine) => engine.result.set([
  engine.header.get("user-agent"), engine.header.get("USER-AGENT"), engine.header.get("X-Trace"),
  engine.header.get("Missing"), engine.header.getAll("user-agent"), engine.header.has("x-trace"),
  [...engine.header.keys()], engine.request.header.get("x-TRACE"),
]);
"""
    outcome = run(source, headers={"User-Agent": ["curl/8", "other"], "X-Trace": ["t"]})
    assert json.loads(outcome.result) == [
        "curl/8",
        "curl/8",
        "t",
        "",
        ["curl/8", "other"],
        True,
        ["User-Agent", "X-Trace"],
        "t",
    ]


def test_body_and_missing_values(run):
    source = """
exports.Run = (engine) => engine.result.set({
  body: engine.body, same: engine.request.body === engine.body,
  missing: engine.params.get("nope") === undefined, fallback: engine.params.get("nope", "d"),
  has: engine.params.has("a"), a: engine.request.params.get("a"), params: engine.params,
});
"""
    outcome = run(source, params={"a": "1"}, body='{"raw": "✓"}')
    assert json.loads(outcome.result) == {
        "body": '{"raw": "✓"}',
        "same": True,
        "missing": True,
        "fallback": "d",
        "has": True,
        "a": "1",
        "params": {"a": "1"},
    }
    assert json.loads(run(source).result)["body"] == ""


def test_logs_of_every_type_in_order(run):
    source = """
exports.Run = (engine) => {
  engine.log.debug("d");
  engine.log.info(42, { a: [1] });
  const { error } = engine.log;
  error("e");
  engine.request.log.info("via request");
};
"""
    assert log_lines(run(source)) == [
        (LogType.DEBUG, "d"),
        (LogType.INFO, "42 { a: [ 1 ] }"),
        (LogType.ERROR, "e"),
        (LogType.INFO, "via request"),
    ]


def test_too_many_or_too_long_logs_are_bounded(run):
    outcome = run(
        "exports.Run = (engine) => { for (let i = 0; i < 1005; i++) engine.log.info(i); };"
    )
    assert len(outcome.logs) == 1001 and outcome.logs[999].content == "999"
    assert outcome.logs[-1].content == "5 more log lines were dropped"
    long = run('exports.Run = (engine) => engine.log.info("x".repeat(9000));')
    assert len(long.logs[0].content) == 8000


def test_a_sync_run(run):
    source = (
        'exports.Run = function (engine) { engine.result.set("sync " + engine.params.get("n")); };'
    )
    outcome = run(source, params={"n": "7"})
    assert (outcome.status, outcome.result) == (RunStatus.COMPLETED, "sync 7")
    assert (outcome.status_code, outcome.content_type, outcome.extra) == (200, "text", {})


def test_module_exports_object_and_builtins_are_there(run):
    source = """
module.exports = {
  Run(engine) {
    engine.result.set([this === module.exports, typeof require, typeof __dirname, typeof fetch]);
  },
};
"""
    assert json.loads(run(source).result) == [True, "function", "string", "function"]


def test_result_encoding(run):
    source = """
exports.Run = (engine) => {
  const circular = {};
  circular.self = circular;
  const values = {
    text: "plain", object: { a: [1, 2.5, null] }, list: [1, "é"], number: 42, nothing: undefined,
    circular, big: 10n, fn: function named() {},
  };
  engine.result.set(values[engine.params.get("kind")]);
};
"""
    expected = {
        "text": "plain",
        "object": '{"a":[1,2.5,null]}',
        "list": '[1,"é"]',
        "number": "42",
        "nothing": "",
        "circular": "[object Object]",
        "big": "10",
        "fn": "function named() {}",
    }
    assert {kind: run(source, params={"kind": kind}).result for kind in expected} == expected


def test_setting_the_result_again_replaces_it(run):
    outcome = run('exports.Run = (e) => { e.result.set("a", 202, "html"); e.result.set("b"); };')
    assert (outcome.result, outcome.status_code, outcome.content_type) == ("b", 200, "text")


def test_a_run_without_result_answers_empty(run):
    outcome = run("exports.Run = async () => {};")
    assert (outcome.status, outcome.result) == (RunStatus.COMPLETED, "")


def test_a_script_without_run_answers_its_stdout(run):
    outcome = run('console.log("line one");\nprocess.stdout.write("dos\\n");\n')
    assert (outcome.status, outcome.result) == (RunStatus.COMPLETED, "line one\ndos\n")
    assert (outcome.status_code, outcome.content_type, outcome.extra) == (200, "text", {})


def test_a_script_is_done_when_its_own_async_work_is(run):
    outcome = run('console.log("first");\nsetTimeout(() => console.log("after a while"), 300);\n')
    assert (outcome.status, outcome.result) == (RunStatus.COMPLETED, "first\nafter a while\n")


def test_a_script_may_exit_normally(run):
    assert run('console.log("bye");\nprocess.exit(0);\nconsole.log("never");\n').result == "bye\n"


def test_output_of_a_run_is_kept_apart(run):
    outcome = run(
        'exports.Run = (e) => {\n  console.log("debugging");\n  console.error("oops");\n'
        '  e.result.set("ok");\n};\n'
    )
    assert (outcome.result, outcome.stdout, outcome.stderr) == ("ok", "debugging\n", "oops\n")


def test_status_code_from_a_string_and_out_of_range(run):
    assert run('exports.Run = (e) => e.result.set("", "404");').status_code == 404
    assert run('exports.Run = (e) => e.result.set("", 999);').status_code == 200


def test_a_result_too_large_fails(run):
    outcome = run('exports.Run = (e) => e.result.set("x".repeat(5 * 1024 * 1024));')
    assert outcome.status is RunStatus.FAILED and "larger than" in outcome.result


def test_a_large_body_arrives_whole(run):
    body = "é" * (1024 * 1024)
    outcome = run(
        "exports.Run = (e) => e.result.set([e.body.length, e.body === 'é'.repeat(e.body.length)]);",
        body=body,
    )
    assert outcome.result == f"[{len(body)},true]"


def test_a_script_is_the_main_module(run):
    assert run('if (require.main === module) console.log("main");\n').result == "main\n"
