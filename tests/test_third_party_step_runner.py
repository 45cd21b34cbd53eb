"""A throwaway step-runner plugin, pip-installed: it adds a step type and replaces a built-in.

Reusable by other tests (e.g. a flow run through the engine or the HTTP API):
``install_step_runner_plugin(directory)`` builds and installs the plugin and
returns its site directory (put it on ``PYTHONPATH`` for a server process, or
use ``plugin_on_path(site)`` in-process); the plugin adds the step type
``THIRD_PARTY_STEP_TYPE`` (config ``{"text": str}``, result
``{"shout": TEXT + "!", "lead": lead id}``) and replaces ``wait`` with a runner
that never waits (result ``{"skipped_wait": seconds}``, no ``resume_after``).
"""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from codeactions_core.flows.placeholders import make_scope, resolve
from codeactions_core.flows.registry import InvalidSteps, check_resolved
from codeactions_core.flows.runners import HttpCallRunner, WaitRunner
from codeactions_core.flows.steps import StepContext, StepResult
from codeactions_core.plugins import get_plugin_manager
from codeactions_core.settings import Settings
from codeactions_core.testing.server import run_cli
from codeactions_core.wiring import load_step_runners
from tests.support.wheels import install_into

THIRD_PARTY_STEP_TYPE = "shout"
THIRD_PARTY_PLUGIN = "shout_steps"
"""The plugin's name (its entry point), e.g. for ``CODEACTIONS_DISABLE_PLUGINS``."""
THIRD_PARTY_MODULE = "codeactions_shout_steps"

PYPROJECT = f"""
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "codeactions-shout-steps"
version = "0.4.2"
dependencies = ["codeactions-core"]

[project.entry-points.codeactions]
{THIRD_PARTY_PLUGIN} = "{THIRD_PARTY_MODULE}"

[tool.setuptools]
py-modules = ["{THIRD_PARTY_MODULE}"]
"""

MODULE = """
from codeactions_core import hookimpl
from codeactions_core.flows.steps import StepResult


class ShoutRunner:
    step_type = "shout"
    config_schema = {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
        "additionalProperties": False,
    }

    def validate_config(self, config):
        return ["config.text: must not be blank"] if not config["text"].strip() else []

    def execute(self, config, context, on_log):
        on_log("shouting")
        return StepResult(result={"shout": config["text"].upper() + "!", "lead": context.lead_id})


class InstantWaitRunner:
    step_type = "wait"
    config_schema = {
        "type": "object",
        "properties": {"seconds": {"type": "number"}},
        "required": ["seconds"],
    }

    def validate_config(self, config):
        return []

    def execute(self, config, context, on_log):
        return StepResult(result={"skipped_wait": config["seconds"]})


@hookimpl
def codeactions_step_runners(settings):
    return [ShoutRunner(), InstantWaitRunner()]
"""


def install_step_runner_plugin(directory: Path) -> Path:
    """Build and pip-install the throwaway plugin under ``directory``; its site directory."""
    source, site = directory / "shout-src", directory / "shout-site"
    source.mkdir(parents=True)
    (source / "pyproject.toml").write_text(PYPROJECT)
    (source / f"{THIRD_PARTY_MODULE}.py").write_text(textwrap.dedent(MODULE))
    return install_into(source, site)


@contextmanager
def plugin_on_path(site: Path) -> Iterator[None]:
    """Make the installed plugin visible to ``get_plugin_manager`` here, then hide it again."""
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(str(site))
        sys.modules.pop(THIRD_PARTY_MODULE, None)
        importlib.invalidate_caches()


@pytest.fixture(scope="module")
def step_runner_plugin_site(tmp_path_factory) -> Path:
    return install_step_runner_plugin(tmp_path_factory.mktemp("step-runner-plugin"))


@pytest.fixture
def plugin_settings(step_runner_plugin_site, tmp_path) -> Iterator[Settings]:
    with plugin_on_path(step_runner_plugin_site):
        yield Settings(data_dir=str(tmp_path / "data"))


def test_the_plugin_adds_a_type_and_replaces_a_builtin(plugin_settings):
    runners = load_step_runners(get_plugin_manager(plugin_settings), plugin_settings)
    assert runners.types() == ["code", "http_call", "shout", "tabular", "wait"]
    assert type(runners.get("wait")).__module__ == THIRD_PARTY_MODULE
    assert not isinstance(runners.get("wait"), WaitRunner)
    assert isinstance(runners.get("http_call"), HttpCallRunner)


def test_steps_are_validated_with_the_plugin_schemas(plugin_settings):
    runners = load_step_runners(get_plugin_manager(plugin_settings), plugin_settings)
    steps = [
        {"id": "a", "type": THIRD_PARTY_STEP_TYPE, "config": {"text": "hi {{leadId}}"}},
        {"id": "b", "type": "wait", "config": {"seconds": 99999}},  # over the built-in's limit
    ]
    assert [step["type"] for step in runners.validate_steps(steps)] == [
        THIRD_PARTY_STEP_TYPE,
        "wait",
    ]
    with pytest.raises(InvalidSteps) as raised:
        runners.validate_steps(
            [
                {"id": "a", "type": THIRD_PARTY_STEP_TYPE, "config": {}},
                {"id": "b", "type": THIRD_PARTY_STEP_TYPE, "config": {"text": "  "}},
            ]
        )
    assert raised.value.problems == [
        "step 1 ('a'): config: 'text' is a required property",
        "step 2 ('b'): config.text: must not be blank",
    ]


def test_the_plugin_runners_run(plugin_settings):
    runners = load_step_runners(get_plugin_manager(plugin_settings), plugin_settings)
    shout = runners.get(THIRD_PARTY_STEP_TYPE)
    config = resolve({"text": "hi {{variables.who}}"}, make_scope("7", {"who": "ana"}, {}))
    check_resolved(shout, config)
    lines = []
    context = StepContext(execution_id="e", flow_id="f", project_uuid="P", step_id="a", lead_id="7")
    result = shout.execute(config, context, lambda message, level="info": lines.append(message))
    assert result == StepResult(result={"shout": "HI ANA!", "lead": "7"})
    assert lines == ["shouting"]
    waited = runners.get("wait").execute({"seconds": 3600}, context, lambda *a, **k: None)
    assert (waited.result, waited.resume_after) == ({"skipped_wait": 3600}, 0.0)


def test_a_disabled_plugin_leaves_the_builtins(step_runner_plugin_site, tmp_path):
    with plugin_on_path(step_runner_plugin_site):
        settings = Settings(data_dir=str(tmp_path), disable_plugins=(THIRD_PARTY_PLUGIN,))
        runners = load_step_runners(get_plugin_manager(settings), settings)
    assert THIRD_PARTY_STEP_TYPE not in runners
    assert isinstance(runners.get("wait"), WaitRunner)


def test_without_the_plugin_on_the_path_nothing_changes(step_runner_plugin_site, tmp_path):
    settings = Settings(data_dir=str(tmp_path))
    assert THIRD_PARTY_STEP_TYPE not in load_step_runners(get_plugin_manager(settings), settings)


def test_the_cli_lists_the_plugin_and_its_hook(step_runner_plugin_site, tmp_path):
    listed = run_cli(
        "plugins",
        "--json",
        settings={
            "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path),
            "PYTHONPATH": str(step_runner_plugin_site),
        },
    )
    assert listed.returncode == 0, listed.stderr
    plugins = {plugin["name"]: plugin for plugin in json.loads(listed.stdout)}
    assert plugins[THIRD_PARTY_PLUGIN]["hooks"] == ["codeactions_step_runners"]
    assert (
        plugins[THIRD_PARTY_PLUGIN]["version"],
        plugins[THIRD_PARTY_PLUGIN]["distribution"],
    ) == (
        "0.4.2",
        "codeactions-shout-steps",
    )
    assert "codeactions_step_runners" in plugins["codeactions_core.default_plugins"]["hooks"]


@pytest.mark.e2e
def test_a_real_server_runs_a_flow_with_the_plugin_steps(step_runner_plugin_site, tmp_path):
    requests = pytest.importorskip("requests")
    from codeactions_core.testing.server import start_server

    server = start_server(
        {"FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path / "data")},
        tmp_path,
        extra_env={"PYTHONPATH": str(step_runner_plugin_site)},
    )
    try:
        flow = requests.post(
            server.url("/flows"), json={"name": "loud", "project_uuid": "P"}, timeout=10
        ).json()
        steps = [
            {
                "id": "pause",
                "type": "wait",
                "config": {"seconds": 3600},
            },  # the plugin's never waits
            {
                "id": "loud",
                "type": THIRD_PARTY_STEP_TYPE,
                "config": {"text": "hi {{variables.who}}"},
            },
        ]
        created = requests.post(
            server.url(f"/flows/{flow['id']}/versions"), json={"steps": steps}, timeout=10
        )
        assert created.status_code == 201, created.text
        requests.post(server.url(f"/flows/{flow['id']}/versions/1/publish"), timeout=10)
        answer = requests.post(
            server.url(f"/flows/{flow['id']}/executions"),
            params={"wait": "true"},
            json={"lead_id": 9, "variables": {"who": "ana"}},
            timeout=60,
        )
    finally:
        server.stop()
    assert answer.status_code == 200, answer.text
    execution = answer.json()
    assert execution["status"] == "completed"
    assert execution["result"] == {
        "pause": {"skipped_wait": 3600},
        "loud": {"shout": "HI ANA!", "lead": "9"},
    }
    assert execution["logs"][1]["logs"][0]["message"] == "shouting"
