"""CPU fairness through a real ``codeactions serve``: a run with 60 ``setsid`` children cannot
starve another project's run (every run has a CPU cap and an equal weight by default)."""

from __future__ import annotations

import collections
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from codeactions_core.testing.server import Answer, CodeClient, start_server

# CPU shares are measured: the test runs alone (`-m exclusive`, after the parallel part).
pytestmark = [pytest.mark.e2e, pytest.mark.exclusive]

TOKEN = f"token-{uuid.uuid4().hex}"
ATTACK_SECONDS = 10
ATTACKER = f"""import os, time
def Run(engine):
    end = time.monotonic() + {ATTACK_SECONDS}
    started = 0
    for _ in range(60):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            os.setsid()
            while time.monotonic() < end:
                pass
            os._exit(0)
        started += 1
    while time.monotonic() < end:
        pass
    engine.result.set(str(started))
"""
VICTIM = """import time
def Run(engine):
    wall, cpu = time.monotonic(), time.process_time()
    total = 0
    for number in range(12_000_000):
        total += number
    ratio = (time.process_time() - cpu) / (time.monotonic() - wall)
    engine.result.set({"ratio": ratio}, content_type="json")
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(
        {
            "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path_factory.mktemp("data")),
            "FLOWS_CODE_ACTIONS_WORKER_POOL_SIZE": "4",
            "FLOWS_CODE_ACTIONS_AUTH_TOKEN": TOKEN,
            "FLOWS_CODE_ACTIONS_SANDBOX_NETWORK": "none",
        },
        tmp_path_factory.mktemp("logs"),
    )
    yield server
    server.stop()


def create(server, source: str, project: str, timeout: int) -> str:
    """POST /code; the new code's id."""
    return CodeClient(server, TOKEN).create(source, project=project, timeout=timeout, name="cpu")


def call(server, code_id: str) -> Answer:
    return CodeClient(server, TOKEN).call(code_id)


@pytest.fixture(autouse=True)
def server_survives(server):
    yield
    CodeClient(server, TOKEN).assert_still_serving()


def most_processes_in_another_pid_namespace() -> int:
    """The largest number of processes any PID namespace but ours holds (root sees them all)."""
    counts: collections.Counter[str] = collections.Counter()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                counts[os.readlink(f"/proc/{entry.name}/ns/pid")] += 1
            except OSError:
                pass
    counts.pop(os.readlink("/proc/self/ns/pid"), None)
    return max(counts.values(), default=0)


def test_sixty_setsid_children_do_not_starve_another_project(server):
    """The victim keeps a fair share: >= 0.4 of a core of CPU time per wall second on this
    2-core machine (without the cpu cgroup the audit measured a 25x slowdown, ~0.04). On a
    machine other work saturates, the runs' groups share what they get, so an equal weight
    leaves the victim about half its share alone: 0.3 of it also passes (a 25x slowdown is
    0.04 of it). The best of three measurements during the attack counts."""
    cgroups = requests.get(server.url("/health"), timeout=5).json()["sandbox"]["cgroups"]
    if "cpu" not in cgroups.get("controllers", []):
        pytest.skip(f"no cpu cgroup here: {cgroups}")
    assert cgroups.get("cpu_cap") is True
    victim = create(server, VICTIM, "B", 20)
    alone = call(server, victim)
    assert alone.status_code == 200, alone.text
    baseline = alone.json()["ratio"]
    attacker = create(server, ATTACKER, "A", ATTACK_SECONDS + 4)
    with ThreadPoolExecutor(1) as pool:
        attack = pool.submit(call, server, attacker)
        deadline = time.monotonic() + ATTACK_SECONDS - 3  # forking under its own cap takes seconds
        while most_processes_in_another_pid_namespace() < 50:
            assert time.monotonic() < deadline, "the attacker's children never started"
            assert not attack.done(), attack.result().text
            time.sleep(0.02)  # polling interval
        ratios: list[float] = []  # the best of up to 3 measurements started during the attack
        while len(ratios) < 3 and not attack.done() and not (ratios and ratios[-1] >= 0.4):
            answer = call(server, victim)
            assert answer.status_code == 200, answer.text
            ratios.append(answer.json()["ratio"])
        assert ratios, "the attack was over before the victim started: it proves nothing"
        attacked = attack.result()
    assert attacked.status_code in (200, 408), attacked.text
    ratio = max(ratios)
    assert ratio >= 0.4 or ratio >= 0.3 * baseline, (
        f"victim: {ratios} under attack, {baseline:.2f} alone"
    )
