"""The runtime's life cycle and health, with node present and missing."""

from __future__ import annotations

import pytest
from codeactions_javascript import JavaScriptRuntime

from codeactions_core.errors import Unavailable
from codeactions_core.execution.runtime import Runtime
from codeactions_core.model import Code, CodeType
from codeactions_core.settings import Settings

MISSING_NODE = "codeactions-no-such-node"


def test_it_is_a_runtime_for_javascript(runtime):
    assert isinstance(runtime, Runtime) and runtime.language == "javascript"


def test_ready_with_the_node_version_and_the_protections(runtime):
    health = runtime.health()
    assert health.ready
    assert health.message.startswith("node v") and health.message[6].isdigit()
    assert "namespaces" in health.details and health.details["clean_environment"] is True


def test_start_and_stop_may_be_repeated(start_runtime, run_on):
    runtime = start_runtime(node_warm_processes=1)
    runtime.start()
    assert run_on(runtime, 'exports.Run = (e) => e.result.set("one");').result == "one"
    runtime.stop()
    runtime.stop()
    assert not runtime.health().ready and runtime.health().message == "stopped"
    runtime.start()
    assert runtime.health().ready
    assert run_on(runtime, 'exports.Run = (e) => e.result.set("two");').result == "two"


def test_without_warm_processes_each_run_starts_its_own(start_runtime, run_on):
    runtime = start_runtime(node_warm_processes=0)
    assert run_on(runtime, 'exports.Run = (e) => e.result.set("cold");').result == "cold"


def test_missing_node_is_reported_not_raised(start_runtime, run_on):
    runtime = start_runtime(node_binary=MISSING_NODE)  # must not raise
    health = runtime.health()
    assert not health.ready
    assert health.message == (
        "node not found: install Node.js or set FLOWS_CODE_ACTIONS_NODE_BINARY"
        f" (looked for {MISSING_NODE!r})"
    )
    with pytest.raises(Unavailable, match="node not found"):
        run_on(runtime, 'exports.Run = (e) => e.result.set("x");')


def test_a_runtime_never_started_is_not_ready(tmp_path):
    runtime = JavaScriptRuntime(Settings(data_dir=str(tmp_path)))
    assert runtime.health().ready is False and runtime.health().message == "not started"


def test_prepare_accepts_any_source_at_once(runtime):
    code = Code(
        id="c",
        name="n",
        type=CodeType.ENDPOINT,
        source="this is not } javascript",
        language="javascript",
        project_uuid="P",
        timeout=10,
    )
    assert runtime.prepare(code) is None
