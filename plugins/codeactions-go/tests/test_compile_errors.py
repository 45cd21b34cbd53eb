"""A code that does not compile fails its runs with the compiler's message."""

from __future__ import annotations

import pytest

from codeactions_core.model import LogType, RunStatus


def test_a_compile_error_fails_the_run_with_the_compiler_message(runtime, run, go_data_dir, unique):
    source = (
        unique
        + """package main

func Run(engine *Engine) {
    engine.Result.Set(notDeclared, 200, "text")
}
"""
    )
    outcome = run(source)
    assert outcome.status is RunStatus.FAILED
    assert outcome.result.startswith("the code does not compile:")
    assert "./action.go:5:23: undefined: notDeclared" in outcome.result
    assert "codeactions-go-" not in outcome.result and go_data_dir not in outcome.result
    assert [(line.type, line.content) for line in outcome.logs] == [(LogType.ERROR, outcome.result)]
    compiles = runtime.builder.compiles
    assert run(source).result == outcome.result
    assert runtime.builder.compiles == compiles  # the error is cached too


def test_code_without_run_or_main_is_told_what_to_define(run, unique):
    outcome = run(unique + "package main\n\nfunc Helper() {}\n")
    assert outcome.status is RunStatus.FAILED
    assert "undefined: Run" in outcome.result and "func Run(engine *Engine)" in outcome.result


@pytest.mark.parametrize(
    ("source", "message", "hint"),
    [
        (
            "package actions\n\nfunc Run(engine *Engine) {}\n",
            "found packages",
            "must be in package main",
        ),
        ("package tool\n\nfunc main() {}\n", "", "must be in package main"),
        (
            'package main\n\nimport "github.com/google/uuid"\n\nfunc main() { _ = uuid.New() }\n',
            "cannot find module providing package github.com/google/uuid",
            "only Go's standard library is available",
        ),
        (
            "package main\n\nfunc main() {}\n\nfunc Run(engine *Engine) {}\n",
            "undefined: Engine",
            "built without the engine",
        ),
    ],
    ids=["package-with-run", "package-with-main", "module", "main-and-run"],
)
def test_common_mistakes_get_a_hint(run, unique, source, message, hint):
    outcome = run(unique + source)
    assert outcome.status is RunStatus.FAILED
    assert outcome.result.startswith("the code does not compile:\n")
    assert message in outcome.result and hint in outcome.result
