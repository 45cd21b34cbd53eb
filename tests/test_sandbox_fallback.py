"""The sandbox where namespaces and cgroups are unavailable: weaker, still sane."""

from __future__ import annotations

import json
import os
import time
from importlib import resources
from pathlib import Path

import pytest

from codeactions_core.execution import protections as sandbox_protections
from codeactions_core.execution.sandbox import SandboxLimits, SandboxSpec, Zygote
from codeactions_core.execution.zygote_config import ZygoteConfig

HARNESS = resources.files("codeactions_python") / "engine" / "codeactions_engine.py"
PRELOAD = {"path": str(HARNESS), "module": "codeactions_engine", "entry": "serve"}


@pytest.fixture
def zygote(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    zygote = Zygote(
        ZygoteConfig(
            preload=PRELOAD, want_namespaces=False, want_cgroups=False, scratch_root=str(scratch)
        )
    )
    zygote.start()
    zygote.scratch = scratch
    yield zygote
    zygote.stop()


def run(zygote, source: str, timeout: float = 10):
    spec = SandboxSpec(timeout=timeout, limits=SandboxLimits())
    return zygote.run(spec, {"source": source, "params": {}, "headers": {}, "body": ""})


def test_protections_say_what_is_off(zygote):
    protections = zygote.protections
    assert protections["namespaces"] == [] and protections["filesystem"] == "host file system"
    assert protections["network"] == "host" and protections["clean_environment"] is True
    assert set(protections["off"]) >= {"namespaces", "cgroups"}
    holding = sandbox_protections.in_force(protections)
    assert not holding["filesystem"] and not holding["network"] and not holding["cgroups"]


def test_a_run_still_works_with_a_clean_environment_and_its_own_group(zygote, monkeypatch):
    report = run(
        zygote,
        "import os, json\ndef Run(engine):\n"
        "    engine.result.set({'env': sorted(os.environ), "
        "'own_group': os.getpgrp() == os.getpid(),"
        " 'uid': os.getuid()})\n",
    )
    seen = json.loads(report.outcome["result"])
    assert seen["env"] == ["HOME", "LANG", "PATH", "TMPDIR"] and seen["own_group"] is True
    if os.geteuid() == 0:
        assert seen["uid"] == 65534


def test_scratch_is_removed_and_children_are_killed_afterwards(zygote):
    marker = f"{time.time_ns() % 100000}.{os.getpid()}"
    report = run(
        zygote,
        "import os\ndef Run(engine):\n"
        "    open('left-behind', 'w').write('x')\n"
        "    if os.fork() == 0:\n"
        f"        os.execv('/bin/sleep', ['sleep', '{marker}'])\n"
        "    engine.result.set(os.getcwd())\n",
    )
    scratch = Path(report.outcome["result"])
    assert scratch.parent == zygote.scratch
    zygote.status(0)  # any request lets the zygote clean up what its reaped children left
    deadline = time.monotonic() + 5
    while (scratch.exists() or sleeping(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling for the zygote's clean-up
        zygote.status(0)
    assert not scratch.exists() and sleeping(marker) == []


def test_the_timeout_still_kills(zygote):
    report = run(zygote, "while True:\n    pass\n", timeout=1)
    assert report.timed_out


def sleeping(marker: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "cmdline").read_bytes().decode(
                errors="replace"
            ):
                found.append(entry.name)
        except OSError:
            pass
    return found
