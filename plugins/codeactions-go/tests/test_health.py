"""Health: ready with the toolchain's version, or not ready with the reason."""

from __future__ import annotations

import pytest

from codeactions_core.errors import Unavailable
from codeactions_core.execution.runtimes import Runtimes


def test_a_ready_runtime_names_the_go_version_and_the_protections(runtime):
    health = runtime.health()
    assert health.ready
    assert health.message.startswith("go1.")
    assert "namespaces" in health.details


def test_a_missing_toolchain_makes_the_runtime_unavailable_without_raising(
    start_runtime, tmp_path, new_code
):
    runtime = start_runtime(data_dir=str(tmp_path), go_binary="codeactions-no-such-go")
    health = runtime.health()
    assert not health.ready
    assert "go toolchain not found" in health.message
    assert "FLOWS_CODE_ACTIONS_GO_BINARY" in health.message
    runtime.prepare(new_code("package main\n"))  # never raises
    with pytest.raises(Unavailable, match="go toolchain not found"):
        Runtimes([runtime]).ready("go")
