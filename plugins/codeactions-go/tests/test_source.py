"""Telling programs (their own main) from codes with Run, without compiling."""

from __future__ import annotations

import pytest
from codeactions_go.source import is_program


@pytest.mark.parametrize(
    ("source", "program"),
    [
        ("package main\nfunc Run(engine *Engine) {}\n", False),
        ("package main\nfunc main() {}\n", True),
        ("package main\n\nfunc   main ( ) {\n}\n", True),
        ("package main\n// func main() {}\nfunc Run(engine *Engine) {}\n", False),
        ("package main\n/* func main() {\n} */\nfunc Run(engine *Engine) {}\n", False),
        ('package main\nvar s = "func main() {}"\nfunc Run(engine *Engine) {}\n', False),
        ("package main\nvar s = `\nfunc main() {}\n`\nfunc Run(engine *Engine) {}\n", False),
        ("package main\ntype T struct{}\nfunc (T) main() {}\nfunc Run(engine *Engine) {}\n", False),
        ("package main\nfunc mainly() {}\nfunc Run(engine *Engine) {}\n", False),
    ],
)
def test_a_program_is_code_with_its_own_main(source, program):
    assert is_program(source) is program
