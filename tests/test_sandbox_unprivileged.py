"""The sandbox of a server that is not root (a developer's `make run`): the strongest mode
the machine allows, and a truthful account of what is off.

The zygote is started as uid 65534 with the system's Python (the suite's own
interpreter may live in root's private home); it enters a user namespace, builds
the allowlist root, and runs code there with no capabilities and the seccomp filter.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from importlib import resources
from pathlib import Path

import pytest

from codeactions_core.execution import protections as sandbox_protections
from codeactions_core.execution import sandbox as sandbox_module
from codeactions_core.execution.sandbox import (
    SandboxLimits,
    SandboxSpec,
    Zygote,
)
from codeactions_core.execution.zygote_config import ZygoteConfig, system_binds

SYSTEM_PYTHON = "/usr/bin/python3.11"
HARNESS = resources.files("codeactions_python") / "engine" / "codeactions_engine.py"
LOOK = """
import os
def Run(engine):
    engine.result.set({"root": sorted(os.listdir("/")), "uid": os.getuid(), "pid": os.getpid(),
                       "home": os.path.exists("/home"), "hostname": os.uname().nodename})
"""


def readable_by_nobody(path: Path) -> bool:
    """The file is world-readable and every folder above it world-searchable."""
    return os.stat(path).st_mode & 0o004 != 0 and all(
        os.stat(folder).st_mode & 0o001 for folder in path.parents
    )


@pytest.fixture
def unprivileged_zygote():
    if os.geteuid() != 0 or not shutil.which("setpriv") or not os.path.exists(SYSTEM_PYTHON):
        pytest.skip("needs root (to become another user), setpriv and the system's Python 3.11")
    zygote_script = Path(sandbox_module.__file__).with_name("zygote.py")
    if not readable_by_nobody(Path(HARNESS).resolve()) or not readable_by_nobody(zygote_script):
        pytest.skip("the checkout is not readable by an unprivileged user")
    stdlib = f"/usr/lib/python3.{sys.version_info.minor}"
    config = ZygoteConfig(
        binds=(*system_binds(), stdlib),
        preload={
            "path": str(Path(HARNESS).resolve()),
            "module": "codeactions_engine",
            "entry": "serve",
        },
    )
    zygote = Zygote(
        config,
        name="unprivileged zygote",
        interpreter=("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", SYSTEM_PYTHON),
    )
    zygote.start()
    yield zygote
    zygote.stop()


def test_an_unprivileged_server_gets_the_strongest_sandbox_the_machine_allows(unprivileged_zygote):
    protections = unprivileged_zygote.protections
    holding = sandbox_protections.in_force(protections)
    if "user" not in protections["namespaces"]:  # no user namespaces here: weaker, and it says so
        assert not holding["filesystem"] and protections["off"]["namespaces"]
        return
    assert holding["filesystem"] and holding["namespaces"] and holding["seccomp"]
    assert not holding["uid"] and "not root" in protections["off"]["uid"]
    assert not holding["cgroups"] and "cgroups" in protections["off"]
    report = unprivileged_zygote.run(
        SandboxSpec(timeout=10, limits=SandboxLimits(), network="none"),
        {"source": LOOK, "params": {}, "headers": {}, "body": ""},
    )
    assert report.outcome and report.outcome["ok"], report
    seen = json.loads(report.outcome["result"])
    assert "home" not in seen["root"] and "var" not in seen["root"] and seen["home"] is False
    assert seen["pid"] == 1 and seen["hostname"] == "sandbox"
    assert seen["uid"] == 0  # root of its user namespace, mapped to 65534 outside, no capabilities
