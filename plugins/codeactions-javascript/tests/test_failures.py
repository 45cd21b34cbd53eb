"""Code that throws, rejects, never ends or exits: the run fails, saying why."""

from __future__ import annotations

import time

import pytest

from codeactions_core.model import LogType, RunStatus

HARNESS_FRAMES = ("harness.js", "node:internal")


def assert_failed_with(outcome, *fragments: str) -> None:
    """Failed, the reason in the result and logged as the last (error) line."""
    assert outcome.status is RunStatus.FAILED and outcome.extra == {}
    for fragment in fragments:
        assert fragment in outcome.result
    assert (outcome.logs[-1].type, outcome.logs[-1].content) == (LogType.ERROR, outcome.result)


def test_a_thrown_error_fails_with_its_stack_trace(run):
    source = """
function helper() {
  throw new TypeError("bad input");
}
exports.Run = (engine) => {
  engine.log.info("before");
  helper();
};
"""
    outcome = run(source)
    assert_failed_with(
        outcome, "TypeError: bad input", "at helper (/", "action.js:3:9", "at exports.Run ("
    )
    assert not any(frame in outcome.result for frame in HARNESS_FRAMES)  # only the user's frames
    assert outcome.logs[0].content == "before"


def test_a_rejected_promise_fails_with_its_stack_trace(run):
    source = """
exports.Run = async (engine) => {
  await new Promise((resolve) => setTimeout(resolve, 5));
  throw new RangeError("too far");
};
"""
    assert_failed_with(run(source), "RangeError: too far", "action.js:4:9")


def test_a_thrown_non_error_fails(run):
    assert_failed_with(run('exports.Run = () => { throw "just text"; };'), "Uncaught 'just text'")


def test_a_syntax_error_fails_clearly(run):
    outcome = run("exports.Run = (engine) => {\n  let = ;\n};\n")
    assert_failed_with(outcome, "SyntaxError", "action.js:2")
    assert not any(frame in outcome.result for frame in HARNESS_FRAMES)


def test_an_error_at_load_time_fails(run):
    outcome = run('require("no-such-module");\nexports.Run = () => {};')
    assert_failed_with(outcome, "Cannot find module 'no-such-module'")


def test_an_uncaught_exception_in_a_callback_fails_the_run(run):
    source = """
exports.Run = () => {
  setTimeout(() => { throw new Error("from a timer"); }, 1);
  return new Promise((resolve) => setTimeout(resolve, 5000));
};
"""
    started = time.monotonic()
    assert_failed_with(run(source), "Error: from a timer")
    assert time.monotonic() - started < 4  # it did not wait for Run's promise


def test_an_unhandled_rejection_fails_the_run(run):
    outcome = run(
        'exports.Run = (e) => {\n  Promise.reject(new Error("nobody listens"));\n'
        '  e.result.set("x");\n};\n'
    )
    assert_failed_with(outcome, "Error: nobody listens")


def test_a_failing_script_fails(run):
    outcome = run('console.log("partial");\nsetTimeout(() => { throw new Error("late"); }, 5);\n')
    assert_failed_with(outcome, "Error: late")
    assert outcome.stdout == "partial\n"


def test_exiting_inside_run_fails(run):
    outcome = run("exports.Run = () => process.exit(0);")
    assert_failed_with(outcome, "the code called process.exit(0) before Run finished")
    assert_failed_with(
        run('console.log("x");\nprocess.exit(3);\n'), "the code called process.exit(3)"
    )


def test_a_promise_that_can_never_settle_fails_at_once(run):
    outcome = run("exports.Run = () => new Promise(() => {});", timeout=60)
    assert_failed_with(outcome, "Run never finished")
    assert not outcome.timed_out


@pytest.mark.parametrize(
    "source",
    [
        "exports.Run = () => { for (;;) {} };",
        "exports.Run = () => new Promise((resolve) => setTimeout(resolve, 60000));",
    ],
    ids=["infinite loop", "timer far past the timeout"],
)
def test_a_run_past_its_timeout_is_killed_and_the_next_run_works(run, source):
    started = time.monotonic()
    outcome = run(source, timeout=5)
    elapsed = time.monotonic() - started
    assert outcome.timed_out and outcome.status is RunStatus.FAILED
    assert outcome.result == "timeout: the code ran longer than its 5 s limit and was stopped"
    assert 5 <= elapsed < 8
    after = run('exports.Run = (e) => e.result.set("still here");')
    assert (after.status, after.result) == (RunStatus.COMPLETED, "still here")


def test_running_out_of_memory_fails_and_the_next_run_works(run):
    outcome = run(
        "const keep = [];\nexports.Run = () => { for (;;) keep.push(new Array(1e6).fill(1)); };"
    )
    assert outcome.status is RunStatus.FAILED and not outcome.timed_out
    assert (
        "memory" in outcome.result or "aborted" in outcome.result
    )  # the cgroup, or V8's heap limit
    assert run('exports.Run = (e) => e.result.set("ok");').result == "ok"
