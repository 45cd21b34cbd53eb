"""The plugin contract: every hook documented, in the module and in the README."""

from __future__ import annotations

import inspect
import re
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
        "codeactions_runtimes",
        "codeactions_store",
        "codeactions_log_store",
        "codeactions_auth_providers",
        "codeactions_step_runners",
        "codeactions_add_routes",
        "codeactions_settings",
    }


@pytest.mark.parametrize(("name", "hook"), HOOKS)
def test_hook_is_documented_and_typed(name, hook):
    doc = inspect.getdoc(hook) or ""
    assert len(doc.splitlines()) >= 3, f"{name} needs a real docstring"
    signature = inspect.signature(hook)
    for parameter in signature.parameters.values():
        assert parameter.annotation is not inspect.Parameter.empty, (
            f"{name}({parameter.name}) untyped"
        )
        assert f"``{parameter.name}``" in doc, (
            f"{name}'s docstring does not explain {parameter.name}"
        )
    assert signature.return_annotation is not inspect.Signature.empty


def readme_section(title: str) -> str:
    """The README's ``## title`` section, up to the next ``## `` heading."""
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def suite_modules() -> list[Path]:
    """The core's and every plugin's test modules, but this one."""
    found = [*(ROOT / "tests").glob("test_*.py"), *(ROOT / "plugins").glob("*/tests/test_*.py")]
    return [path for path in found if path.resolve() != Path(__file__).resolve()]


@pytest.mark.parametrize(("name", "hook"), HOOKS)
def test_hook_is_in_the_readme_plugin_section(name, hook):
    assert f"`{name}(" in readme_section("Writing a plugin"), (
        f"README's plugin section does not list {name}"
    )


@pytest.mark.parametrize(("name", "hook"), HOOKS)
def test_hook_is_exercised_by_a_test(name, hook):
    """Some test implements the hook (``def name(``) or calls it (``.name(``), as datasette's
    ``test_plugin_hooks_have_tests`` requires of its hooks."""
    use = re.compile(rf"(\bdef |\.){name}\(")
    users = [path.name for path in suite_modules() if use.search(path.read_text())]
    assert users, f"no test implements or calls the hook {name}"
