"""What a Python run can see of the machine (details of the sandbox; the hostile-code
suite of the core proves the same through a real server)."""

from __future__ import annotations

import json
import os

import pytest

from codeactions_core.execution.runtime import Job
from codeactions_core.model import Code, CodeType, RunStatus
from codeactions_core.settings import Settings
from codeactions_python import PythonRuntime


def test_runs_are_isolated_from_the_server(run, monkeypatch):
    source = '''
import os, json
def Run(engine):
    try:
        listing = os.listdir(engine.params.get("server_cwd"))
    except FileNotFoundError:  # a working directory under /tmp is not there at all
        listing = []
    engine.result.set({"env": dict(os.environ), "uid": os.getuid(), "pid": os.getpid(),
                       "cwd": os.getcwd(), "cwd_listing": listing,
                       "procs": sorted(p for p in os.listdir("/proc") if p.isdigit())})
'''
    outcome = run(source, params={"server_cwd": os.getcwd()})
    assert outcome.status is RunStatus.COMPLETED, outcome.result
    seen = json.loads(outcome.result)
    assert set(seen["env"]) <= {"PATH", "LANG", "HOME", "TMPDIR"}
    assert seen["pid"] == 1 and seen["procs"] == ["1"]
    assert seen["cwd"] == "/tmp" and seen["cwd_listing"] == []
    if os.geteuid() == 0:
        assert seen["uid"] == 65534


def test_scratch_is_private_and_fresh(run):
    writer = run('def Run(engine):\n    open("/tmp/left-behind", "w").write("x")\n    engine.result.set("ok")\n')
    reader = run('import os\ndef Run(engine):\n    engine.result.set(os.path.exists("/tmp/left-behind"))\n')
    assert (writer.result, reader.result) == ("ok", "false")


CGROUP_LIMITS = '''
import json
def Run(engine):
    limits = {}
    for line in open("/proc/self/cgroup"):
        _, controllers, path = line.strip().split(":", 2)
        for controller, knob in (("pids", "pids.max"), ("memory", "memory.limit_in_bytes"),
                                 ("cpu", "cpu.cfs_quota_us")):
            if controller in controllers.split(","):
                limits[knob] = open(f"/sys/fs/cgroup/{controller}{path}/{knob}").read().strip()
    engine.result.set(limits, content_type="json")
'''


def test_resource_settings_reach_the_run_cgroups(tmp_path):
    settings = Settings(data_dir=str(tmp_path), resource_enabled=True, memory_limit=300 * 2**20,
                        cpu_quota=50_000, sandbox_processes=40)
    runtime = PythonRuntime(settings)
    runtime.start()
    try:
        if set(runtime.health().details.get("cgroups", [])) != {"cpu", "memory", "pids"}:
            pytest.skip("per-run cgroups are not available on this machine")
        code = Code(id="c", name="t", type=CodeType.ENDPOINT, source=CGROUP_LIMITS, language="python",
                    project_uuid="P", timeout=10)
        outcome = runtime.execute(Job(run_id="r", code=code))
    finally:
        runtime.stop()
    assert outcome.status is RunStatus.COMPLETED, outcome.result
    assert json.loads(outcome.result) == {
        "pids.max": "40", "memory.limit_in_bytes": str(300 * 2**20), "cpu.cfs_quota_us": "50000",
    }
