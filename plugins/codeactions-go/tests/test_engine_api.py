"""The engine API of ENGINE_API.md, through real compiles and sandboxed runs."""

from __future__ import annotations

import time

import pytest

from codeactions_core.execution.runtime import Job, LogLine
from codeactions_core.model import LogType, RunStatus

EXAMPLE = """package main

func Run(engine *Engine) {
    who := engine.Params.Get("name")
    engine.Log.Info("hello " + who)
    engine.Result.Set(map[string]string{"hi": who}, 200, "json")
}
"""


def test_the_engine_api_example(run):
    outcome = run(EXAMPLE, params={"name": "x"})
    assert outcome.status is RunStatus.COMPLETED, outcome.result
    assert outcome.result == '{"hi":"x"}'
    assert (outcome.status_code, outcome.content_type, outcome.extra) == (200, "json", {})
    assert [(line.type, line.content) for line in outcome.logs] == [(LogType.INFO, "hello x")]


def test_header_get_is_case_insensitive_and_gives_the_first_value(run):
    source = """package main

import "strings"

func Run(engine *Engine) {
    h := engine.Header
    engine.Result.Set(h.Get("x-api-key")+"|"+h.Get("USER-AGENT")+"|"+h.Get("Missing")+"|"+
        strings.Join(h.Values("X-API-KEY"), ","), 200, "text")
}
"""
    outcome = run(source, headers={"X-Api-Key": ["k1", "k2"], "User-Agent": ["curl/8"]})
    assert outcome.result == "k1|curl/8||k1,k2"


def test_body_params_and_request_carry_the_request(run):
    source = """package main

func Run(engine *Engine) {
    r := engine.Request
    engine.Result.Set(engine.Body+"|"+r.Body+"|"+r.Params.Get("a")+"|"+engine.Params.Get("n")+"|"+
        engine.Params.Get("absent")+"|"+r.Header.Get("x"), 202, "html")
}
"""
    outcome = run(source, body="héllo ✓\n{}", params={"a": "1", "n": 3}, headers={"X": ["y"]})
    assert outcome.result == "héllo ✓\n{}|héllo ✓\n{}|1|3||y"
    assert (outcome.status_code, outcome.content_type, outcome.extra) == (202, "html", {})


def test_logs_keep_their_order_and_kinds(run):
    source = """package main

func Run(engine *Engine) {
    engine.Log.Debug("one")
    engine.Log.Info("two")
    engine.Log.Error("three")
    engine.Request.Log.Infof("%d-%s", 4, "four")
}
"""
    outcome = run(source)
    assert [(line.type, line.content) for line in outcome.logs] == [
        (LogType.DEBUG, "one"),
        (LogType.INFO, "two"),
        (LogType.ERROR, "three"),
        (LogType.INFO, "4-four"),
    ]
    assert (outcome.status, outcome.result, outcome.status_code, outcome.content_type) == (
        RunStatus.COMPLETED,
        "",
        200,
        "text",
    )


def test_log_lines_are_bounded_in_number_and_length(run):
    source = """package main

import "strings"

func Run(engine *Engine) {
    engine.Log.Info(strings.Repeat("é", 9000))
    for i := 0; i < 1004; i++ {
        engine.Log.Debug("line")
    }
}
"""
    outcome = run(source)
    assert outcome.logs[0].content == "é" * 8000
    assert len(outcome.logs) == 1001
    assert outcome.logs[-1] == LogLine(LogType.ERROR, "5 more log lines were dropped")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"<b>kept</b>"', "<b>kept</b>"),
        ('[]byte("raw bytes")', "raw bytes"),
        ('map[string]any{"a": []int{1, 2}, "h": "<x>"}', '{"a":[1,2],"h":"<x>"}'),
        ('struct{ N int `json:"n"` }{7}', '{"n":7}'),
        ("nil", "null"),
        ("func() {}", "0x"),  # JSON cannot encode it: fmt.Sprint
    ],
)
def test_result_set_keeps_strings_and_encodes_the_rest(run, value, expected):
    source = f"""package main

func Run(engine *Engine) {{
    engine.Result.Set("replaced", 500, "text")
    engine.Result.Set({value}, 201, "json")
}}
"""
    outcome = run(source)
    assert outcome.status is RunStatus.COMPLETED, outcome.result
    assert outcome.result.startswith(expected) if expected == "0x" else outcome.result == expected
    assert (outcome.status_code, outcome.content_type, outcome.extra) == (201, "json", {})


def test_a_program_with_its_own_main_answers_its_standard_output(run):
    source = """package main

import (
    "fmt"
    "os"
)

func main() {
    fmt.Println("hello from main")
    fmt.Fprintln(os.Stderr, "a warning")
}
"""
    outcome = run(source)
    assert outcome.status is RunStatus.COMPLETED, outcome.result
    assert outcome.result == "hello from main\n"
    assert (outcome.status_code, outcome.content_type, outcome.extra) == (200, "text", {})
    assert (outcome.stdout, outcome.stderr) == ("", "a warning\n")


def test_a_program_exiting_with_an_error_status_fails(run):
    source = """package main

import (
    "fmt"
    "os"
)

func main() {
    fmt.Fprintln(os.Stderr, "cannot go on")
    os.Exit(3)
}
"""
    outcome = run(source)
    assert outcome.status is RunStatus.FAILED
    assert "status 3" in outcome.result and "cannot go on" in outcome.result


def test_a_panic_fails_the_run_with_its_message_and_an_error_log(run):
    source = """package main

func Run(engine *Engine) {
    engine.Log.Info("before")
    explode(engine.Params.Get("what"))
}

func explode(what string) {
    panic("boom: " + what)
}
"""
    outcome = run(source, params={"what": "bang"})
    assert outcome.status is RunStatus.FAILED
    assert outcome.result.startswith("panic: boom: bang\n")
    assert "main.explode" in outcome.result and "main.Run" in outcome.result
    assert "action.go:9" in outcome.result and "harness" not in outcome.result
    assert [(line.type, line.content) for line in outcome.logs] == [
        (LogType.INFO, "before"),
        (LogType.ERROR, outcome.result),
    ]


def test_a_runtime_error_panic_names_the_error(run):
    source = """package main

func Run(engine *Engine) {
    var items []string
    engine.Result.Set(items[len(engine.Body)+2], 200, "text")
}
"""
    outcome = run(source)
    assert outcome.status is RunStatus.FAILED
    assert outcome.result.startswith("panic: runtime error: index out of range [2] with length 0")


def test_a_run_past_its_timeout_is_killed(runtime, run):
    source = """package main

import "time"

func Run(engine *Engine) {
    engine.Log.Info("sleeping")
    time.Sleep(60 * time.Second)
}
"""
    runtime.builder.build(source)  # compile outside the measured run
    started = time.monotonic()
    outcome = run(source, timeout=5)
    elapsed = time.monotonic() - started
    assert outcome.status is RunStatus.FAILED and outcome.timed_out
    assert "5 s limit" in outcome.result
    assert 5 <= elapsed < 8


def test_user_code_sees_no_server_environment(start_runtime, new_code, monkeypatch):
    canary = "canary-7f3e9a"
    monkeypatch.setenv("CODEACTIONS_GO_TEST_CANARY", canary)
    monkeypatch.setenv("FLOWS_CODE_ACTIONS_AUTH_TOKEN", canary)
    runtime = start_runtime()  # started after the variables were set
    source = """package main

import (
    "os"
    "strings"
)

func Run(engine *Engine) {
    engine.Result.Set(strings.Join(os.Environ(), "\\n"), 200, "text")
}
"""
    outcome = runtime.execute(Job("r", new_code(source)))
    assert outcome.status is RunStatus.COMPLETED, outcome.result
    assert canary not in outcome.result
    names = {line.partition("=")[0] for line in outcome.result.splitlines()}
    assert names <= {"PATH", "LANG", "HOME", "TMPDIR", "GOMAXPROCS", "GOMEMLIMIT"}
    assert "GOMAXPROCS=2" in outcome.result.splitlines()


def test_run_ending_its_goroutine_fails_the_run(run):
    source = """package main

import "runtime"

func Run(engine *Engine) {
    engine.Result.Set("never answered", 200, "text")
    runtime.Goexit()
}
"""
    outcome = run(source)
    assert outcome.status is RunStatus.FAILED
    assert outcome.result == "Run did not return: it called runtime.Goexit or panic(nil)"


def test_memory_within_the_limit_works_and_beyond_it_fails_with_the_reason(run):
    source = """package main

import "strconv"

func Run(engine *Engine) {
    size, _ := strconv.Atoi(engine.Params.Get("mib"))
    block := make([]byte, size<<20)
    for i := range block {
        block[i] = 1
    }
    engine.Result.Set(len(block)>>20, 200, "text")
}
"""
    assert run(source, params={"mib": "100"}).result == "100"
    outcome = run(source, params={"mib": "4096"})  # beyond the address-space limit
    assert outcome.status is RunStatus.FAILED
    reason = outcome.result.splitlines()[0]
    assert reason.startswith("fatal error: ") and reason.endswith("out of memory")
