"""What a Python run can see of the machine (details of the sandbox; the hostile-code
suite of the core proves the same through a real server)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from codeactions_python import PythonRuntime

from codeactions_core.execution.runtime import Job
from codeactions_core.model import Code, CodeType, RunStatus
from codeactions_core.settings import Settings


def test_runs_are_isolated_from_the_server(run, monkeypatch):
    source = """
import os, json
def Run(engine):
    try:
        listing = os.listdir(engine.params.get("server_cwd"))
    except FileNotFoundError:  # a working directory under /tmp is not there at all
        listing = []
    engine.result.set({"env": dict(os.environ), "uid": os.getuid(), "pid": os.getpid(),
                       "cwd": os.getcwd(), "cwd_listing": listing,
                       "procs": sorted(p for p in os.listdir("/proc") if p.isdigit())})
"""
    outcome = run(source, params={"server_cwd": os.getcwd()})
    assert outcome.status is RunStatus.COMPLETED, outcome.result
    seen = json.loads(outcome.result)
    assert set(seen["env"]) <= {"PATH", "LANG", "HOME", "TMPDIR"}
    assert seen["pid"] == 1 and seen["procs"] == ["1"]
    assert seen["cwd"] == "/tmp" and seen["cwd_listing"] == []
    if os.geteuid() == 0:  # one uid of the sandbox range per live sandbox, never the server's
        low, high = runtime_uid_range()
        assert low <= seen["uid"] <= high


def runtime_uid_range() -> tuple[int, int]:
    settings = Settings()
    return settings.sandbox_uid_base, settings.sandbox_uid_base + settings.sandbox_uid_count - 1


def test_scratch_is_private_and_fresh(run):
    writer = run(
        'def Run(engine):\n    open("/tmp/left-behind", "w").write("x")\n'
        '    engine.result.set("ok")\n'
    )
    reader = run(
        'import os\ndef Run(engine):\n    engine.result.set(os.path.exists("/tmp/left-behind"))\n'
    )
    assert (writer.result, reader.result) == ("ok", "false")


CGROUP_PATHS = """
def Run(engine):
    engine.result.set(open("/proc/self/cgroup").read())
"""
KNOBS = {"pids": "pids.max", "memory": "memory.limit_in_bytes", "cpu": "cpu.cfs_quota_us"}


def knobs_of(cgroup_file: str) -> dict[str, str]:
    """The limits of the groups a run was in, read from the host (runs see no cgroupfs)."""
    limits = {}
    for line in cgroup_file.splitlines():
        _, controllers, path = line.split(":", 2)
        for controller, knob in KNOBS.items():
            if controller in controllers.split(","):
                limits[knob] = Path(f"/sys/fs/cgroup/{controller}{path}/{knob}").read_text().strip()
    return limits


def test_resource_settings_reach_the_run_cgroups(tmp_path):
    settings = Settings(
        data_dir=str(tmp_path),
        resource_enabled=True,
        memory_limit=300 * 2**20,
        cpu_quota=50_000,
        sandbox_processes=40,
    )
    runtime = PythonRuntime(settings)
    runtime.start()
    try:
        cgroups = runtime.health().details.get("cgroups", {})
        if cgroups.get("version") != 1 or not {"cpu", "memory", "pids"} <= set(
            cgroups["controllers"]
        ):
            pytest.skip("per-run v1 cgroups are not available on this machine")
        code = Code(
            id="c",
            name="t",
            type=CodeType.ENDPOINT,
            source=CGROUP_PATHS,
            language="python",
            project_uuid="P",
            timeout=10,
        )
        outcome = runtime.execute(Job(run_id="r", code=code))
        assert outcome.status is RunStatus.COMPLETED, outcome.result
        limits = knobs_of(outcome.result)
    finally:
        runtime.stop()
    assert limits == {
        "pids.max": "40",
        "memory.limit_in_bytes": str(300 * 2**20),
        "cpu.cfs_quota_us": "50000",
    }
