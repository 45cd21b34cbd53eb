"""The plugin contract: every hook documented, in the module and in the README."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from codeactions_core import hookspecs

ROOT = Path(__file__).resolve().parents[1]
HOOKS = [
    (name, function)
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("codeactions_")
]


def test_the_architecture_hooks_exist():
    assert {name for name, _ in HOOKS} == {
        "codeactions_runtimes", "codeactions_store", "codeactions_log_store",
        "codeactions_auth_providers", "codeactions_step_runners", "codeactions_add_routes",
        "codeactions_settings",
    }


@pytest.mark.parametrize(("name", "hook"), HOOKS)
def test_hook_is_documented_and_typed(name, hook):
    doc = inspect.getdoc(hook) or ""
    assert len(doc.splitlines()) >= 3, f"{name} needs a real docstring"
    signature = inspect.signature(hook)
    for parameter in signature.parameters.values():
        assert parameter.annotation is not inspect.Parameter.empty, f"{name}({parameter.name}) untyped"
        assert f"``{parameter.name}``" in doc, f"{name}'s docstring does not explain {parameter.name}"
    assert signature.return_annotation is not inspect.Signature.empty


@pytest.mark.parametrize(("name", "hook"), HOOKS)
def test_hook_is_in_the_readme(name, hook):
    assert f"`{name}" in (ROOT / "README.md").read_text()
