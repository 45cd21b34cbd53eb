"""A throwaway plugin distribution, pip-installed, seen working through the running core."""

from __future__ import annotations

import json
import textwrap

import pytest
import requests

from codeactions_core.testing.server import run_cli, start_server
from tests.support.wheels import install_into

pytestmark = pytest.mark.e2e

PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "codeactions-hello"
version = "1.2.3"
dependencies = ["codeactions-core"]

[project.entry-points.codeactions]
hello = "codeactions_hello"

[tool.setuptools]
py-modules = ["codeactions_hello"]
"""

MODULE = '''
from dataclasses import dataclass

from codeactions_core import hookimpl
from codeactions_core.execution.runtime import RuntimeHealth
from codeactions_core.settings import PluginSettings, at_least, setting


@dataclass(frozen=True)
class HelloSettings(PluginSettings):
    """Settings of codeactions-hello:"""

    hello_greeting: str = setting("from a plugin", "What `/hello` answers.")
    hello_repeats: int = setting(1, "Times `/hello` repeats it.", parse=at_least(1))
    hello_token: str = setting("", "A secret of the plugin.", secret=True)


class Hello:
    openapi = {
        "get": {"summary": "a plugin's greeting", "responses": {"200": {"description": "hello"}}}
    }

    def __init__(self, services):
        self.services = services

    def on_get(self, req, resp):
        hello = self.services.settings.plugin(HelloSettings)
        greeting = " ".join([hello.hello_greeting] * hello.hello_repeats)
        resp.media = {"hello": greeting, "store": self.services.store.kind}


class ShoutRuntime:
    language = "shout"

    def start(self): pass
    def stop(self): pass
    def health(self): return RuntimeHealth(ready=True)
    def prepare(self, code): pass
    def execute(self, job): raise NotImplementedError


@hookimpl
def codeactions_add_routes(app, services):
    app.add_route("/hello", Hello(services))


@hookimpl
def codeactions_runtimes(settings):
    return [ShoutRuntime()]


@hookimpl
def codeactions_settings():
    return [HelloSettings]
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """Build and pip-install the plugin into its own directory (the venv stays untouched)."""
    source = tmp_path_factory.mktemp("hello-src")
    (source / "pyproject.toml").write_text(PYPROJECT)
    (source / "codeactions_hello.py").write_text(textwrap.dedent(MODULE))
    site = tmp_path_factory.mktemp("hello-site")
    return install_into(source, site)


def test_installed_plugin_is_listed_with_its_version(plugin_site, tmp_path):
    settings = {"FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path), "PYTHONPATH": str(plugin_site)}
    listed = run_cli("plugins", "--json", settings=settings)
    assert listed.returncode == 0, listed.stderr
    hello = {p["name"]: p for p in json.loads(listed.stdout)}["hello"]
    assert (hello["version"], hello["distribution"]) == ("1.2.3", "codeactions-hello")
    assert set(hello["hooks"]) == {
        "codeactions_add_routes",
        "codeactions_runtimes",
        "codeactions_settings",
    }


def test_the_plugins_settings_are_listed_secrets_hidden(plugin_site, tmp_path):
    settings = {
        "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path),
        "PYTHONPATH": str(plugin_site),
        "FLOWS_CODE_ACTIONS_HELLO_REPEATS": "3",
        "FLOWS_CODE_ACTIONS_HELLO_TOKEN": "hello-secret-value",
    }
    listed = run_cli("settings", settings=settings)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert "FLOWS_CODE_ACTIONS_HELLO_GREETING=from a plugin" in lines
    assert "FLOWS_CODE_ACTIONS_HELLO_REPEATS=3" in lines
    assert "FLOWS_CODE_ACTIONS_HELLO_TOKEN=<set>" in lines
    assert "hello-secret-value" not in listed.stdout
    table = run_cli("settings", "--markdown", settings=settings).stdout
    assert "Settings of codeactions-hello:\n\n| Variable | Default | Meaning |" in table
    assert "| `FLOWS_CODE_ACTIONS_HELLO_REPEATS` | `1` | Times `/hello` repeats it. |" in table


def test_a_bad_value_of_the_plugins_setting_stops_the_server(plugin_site, tmp_path):
    settings = {
        "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path),
        "PYTHONPATH": str(plugin_site),
        "FLOWS_CODE_ACTIONS_HELLO_REPEATS": "0",
    }
    refused = run_cli("serve", settings=settings, timeout=60)
    assert refused.returncode == 2
    assert (
        "codeactions serve: FLOWS_CODE_ACTIONS_HELLO_REPEATS: must be at least 1" in refused.stderr
    )


def test_running_core_calls_the_plugin(plugin_site, tmp_path):
    settings = {"FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path)}
    extra = {"PYTHONPATH": str(plugin_site), "FLOWS_CODE_ACTIONS_HELLO_REPEATS": "2"}
    server = start_server(settings, tmp_path, extra_env=extra)
    try:
        hello = requests.get(server.url("/hello"), timeout=10)
        assert (hello.status_code, hello.json()) == (
            200,
            {"hello": "from a plugin from a plugin", "store": "sqlite"},
        )
        described = requests.get(server.url("/openapi.json"), timeout=10).json()["paths"]["/hello"]
        assert described["get"]["summary"] == "a plugin's greeting"
        created = requests.post(
            server.url("/code"),
            params={"name": "loud", "language": "shout", "type": "flow", "project_uuid": "P"},
            data="HELLO",
            timeout=10,
        )
        assert created.status_code == 201, created.text
        assert created.json()["language"] == "shout"
    finally:
        server.stop()


def test_disabled_plugin_is_not_called(plugin_site, tmp_path):
    settings = {
        "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path),
        "CODEACTIONS_DISABLE_PLUGINS": "hello",
    }
    server = start_server(settings, tmp_path, extra_env={"PYTHONPATH": str(plugin_site)})
    try:
        assert requests.get(server.url("/hello"), timeout=10).status_code == 404
        refused = requests.post(
            server.url("/code"),
            params={"name": "loud", "language": "shout", "type": "flow", "project_uuid": "P"},
            data="HELLO",
            timeout=10,
        )
        assert refused.status_code == 400 and "'shout'" in refused.json()["message"]
    finally:
        server.stop()
    listed = run_cli("plugins", "--json", settings={**settings, "PYTHONPATH": str(plugin_site)})
    assert "hello" not in {p["name"] for p in json.loads(listed.stdout)}
