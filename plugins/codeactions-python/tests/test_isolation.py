"""What a Python run can see of the machine (details of the sandbox; the hostile-code
suite of the core proves the same through a real server)."""

from __future__ import annotations

import json
import os

from codeactions_core.model import RunStatus


def test_runs_are_isolated_from_the_server(run, monkeypatch):
    source = '''
import os, json
def Run(engine):
    engine.result.set({"env": dict(os.environ), "uid": os.getuid(), "pid": os.getpid(),
                       "cwd": os.getcwd(), "cwd_listing": os.listdir(engine.params.get("server_cwd")),
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
