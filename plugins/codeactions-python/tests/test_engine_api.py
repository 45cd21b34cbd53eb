"""The engine API of ENGINE_API.md, as existing Python actions use it."""

from __future__ import annotations

import json

from codeactions_python import PythonRuntime

from codeactions_core.execution.runtime import Job
from codeactions_core.model import Code, CodeType, LogType, RunStatus
from codeactions_core.settings import Settings


def test_the_documented_example(run):
    source = """
def Run(engine):
    who = engine.params.get("name")
    pairs = sorted(engine.params.items())
    raw = engine.body
    agent = engine.header.get("User-Agent")
    names = sorted(name for name, values in engine.header.items())
    engine.log.info("hello")
    engine.result.set({"hi": who, "pairs": pairs, "raw": raw, "agent": agent, "names": names},
                      status_code=201, content_type="json")
"""
    outcome = run(
        source,
        params={"name": "ana", "x": "1"},
        body="raw ✓",
        headers={"User-Agent": ["curl/8", "other"], "X-Trace": ["t"]},
    )
    assert outcome.status is RunStatus.COMPLETED
    assert json.loads(outcome.result) == {
        "hi": "ana",
        "pairs": [["name", "ana"], ["x", "1"]],
        "raw": "raw ✓",
        "agent": "curl/8",
        "names": ["User-Agent", "X-Trace"],
    }
    assert (outcome.status_code, outcome.content_type, outcome.extra) == (201, "json", {})
    assert [(line.type, line.content) for line in outcome.logs] == [(LogType.INFO, "hello")]


def test_missing_values_and_request_object(run):
    source = """
def Run(engine):
    engine.result.set(repr([
        engine.params.get("nope"), engine.header.get("Nope"), engine.body,
        engine.request.params.get("a"), engine.request.header.get("x-a"), engine.request.body,
        engine.header.get("X-A"), engine.secrets.get("KEY"),
    ]))
"""
    outcome = run(source, params={"a": "1"}, headers={"X-A": ["v"]}, body="")
    assert outcome.result == repr([None, "", "", "1", "v", "", "v", None])


def test_result_encoding(run):
    source = """
class Thing:
    def __str__(self):
        return "a thing"

def Run(engine):
    kind = engine.params.get("kind")
    value = {"text": "plain", "dict": {"a": [1, 2.5, None]}, "list": [1, "é"], "thing": Thing(),
             "number": 42}[kind]
    engine.result.set(value)
"""
    assert run(source, params={"kind": "text"}).result == "plain"
    assert run(source, params={"kind": "dict"}).result == '{"a": [1, 2.5, null]}'
    assert run(source, params={"kind": "list"}).result == '[1, "\\u00e9"]'
    assert run(source, params={"kind": "thing"}).result == "a thing"
    assert run(source, params={"kind": "number"}).result == "42"
    outcome = run(source, params={"kind": "number"})
    assert (outcome.status_code, outcome.content_type, outcome.extra) == (200, "text", {})


def test_setting_the_result_again_replaces_it(run):
    outcome = run(
        'def Run(engine):\n    engine.result.set("a", status_code=202, content_type="html")\n'
        '    engine.result.set("b")\n'
    )
    assert (outcome.result, outcome.status_code, outcome.content_type) == ("b", 200, "text")


def test_run_without_result_answers_empty(run):
    outcome = run("def Run(engine):\n    pass\n")
    assert (outcome.status, outcome.result) == (RunStatus.COMPLETED, "")


def test_logs_of_every_type_in_order(run):
    outcome = run(
        "def Run(engine):\n"
        '    engine.log.debug("d")\n    engine.log.info(42)\n    engine.log.error("e")\n'
        '    engine.request.log.info("via request")\n'
    )
    assert [(line.type, line.content) for line in outcome.logs] == [
        (LogType.DEBUG, "d"),
        (LogType.INFO, "42"),
        (LogType.ERROR, "e"),
        (LogType.INFO, "via request"),
    ]


def test_too_many_logs_are_counted_not_kept(run):
    outcome = run("def Run(engine):\n    for i in range(1005):\n        engine.log.info(i)\n")
    assert len(outcome.logs) == 1001
    assert outcome.logs[-1].content == "5 more log lines were dropped"
    long = run('def Run(engine):\n    engine.log.info("x" * 9000)\n')
    assert len(long.logs[0].content) == 8000


def test_a_script_without_run_answers_its_stdout(run):
    outcome = run('import sys\nprint("line one")\nprint("dos", file=sys.stdout)\n')
    assert (outcome.status, outcome.result) == (RunStatus.COMPLETED, "line one\ndos\n")
    assert (outcome.status_code, outcome.content_type, outcome.extra) == (200, "text", {})


def test_a_script_may_exit_normally(run):
    assert run('print("bye")\nraise SystemExit(0)\n').result == "bye\n"


def test_stdout_of_a_run_is_kept_apart(run):
    outcome = run(
        'import sys\ndef Run(engine):\n    print("debugging")\n    print("oops", file=sys.stderr)\n'
        '    engine.result.set("ok")\n'
    )
    assert (outcome.result, outcome.stdout, outcome.stderr) == ("ok", "debugging\n", "oops\n")


def test_an_exception_fails_the_run_with_its_traceback(run):
    outcome = run(
        'def helper():\n    raise ValueError("bad input")\n\ndef Run(engine):\n    helper()\n'
    )
    assert outcome.status is RunStatus.FAILED
    assert (
        "ValueError: bad input" in outcome.result
        and 'File "action.py", line 2, in helper' in outcome.result
    )
    assert "codeactions_engine" not in outcome.result  # only the user's frames
    assert (
        outcome.logs[-1].type is LogType.ERROR
        and "ValueError: bad input" in outcome.logs[-1].content
    )


def test_syntax_error_fails_clearly(run):
    outcome = run("def Run(engine)\n    pass\n")
    assert outcome.status is RunStatus.FAILED and "SyntaxError" in outcome.result


def test_sys_exit_inside_run_fails(run):
    outcome = run("import sys\ndef Run(engine):\n    sys.exit(3)\n")
    assert outcome.status is RunStatus.FAILED and "SystemExit: 3" in outcome.result


def test_standard_library_is_importable(run):
    source = """
import sqlite3, xml.etree.ElementTree as ET, zoneinfo, email.message, statistics
def Run(engine):
    db = sqlite3.connect(":memory:")
    engine.result.set([db.execute("select 6*7").fetchone()[0], ET.fromstring("<a>b</a>").text,
                       statistics.mean([1, 2, 3])])
"""
    assert run(source).result == '[42, "b", 2]'


def test_server_packages_are_not_importable(run):
    source = """
def Run(engine):
    found = []
    for name in ("falcon", "peewee", "psycopg2", "codeactions_core", "codeactions_sql", "pluggy"):
        try:
            __import__(name)
            found.append(name)
        except ImportError:
            pass
    engine.result.set(found)
"""
    assert run(source).result == "[]"


def test_a_result_too_large_fails(run):
    outcome = run('def Run(engine):\n    engine.result.set("x" * (5 * 1024 * 1024))\n')
    assert outcome.status is RunStatus.FAILED and "larger than" in outcome.result


def test_status_code_from_a_string_and_out_of_range(run):
    assert (
        run('def Run(engine):\n    engine.result.set("", status_code="404")\n').status_code == 404
    )
    assert run('def Run(engine):\n    engine.result.set("", status_code=999)\n').status_code == 200


def test_output_beyond_the_limit_is_cut(tmp_path):
    runtime = PythonRuntime(Settings(data_dir=str(tmp_path), sandbox_output_kb=64))
    runtime.start()
    try:
        code = Code(
            id="c",
            name="t",
            type=CodeType.ENDPOINT,
            language="python",
            project_uuid="P",
            timeout=10,
            source='import sys\ndef Run(engine):\n    sys.stdout.write("x" * 200_000)\n'
            '    sys.stderr.write("y" * 200_000)\n    engine.result.set("ok")\n',
        )
        outcome = runtime.execute(Job(run_id="r", code=code))
    finally:
        runtime.stop()
    assert outcome.result == "ok"
    assert (len(outcome.stdout), len(outcome.stderr)) == (64 * 1024, 64 * 1024)
    assert outcome.logs[-1].content == "output beyond the limit was cut"
