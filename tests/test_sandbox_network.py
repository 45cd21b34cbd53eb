"""The sandbox network: a prepared namespace per slot, the egress policy, nothing left behind.

Every packet stays inside namespaces these tests create (``tests.support.netns``):
the SandboxNetwork under test runs in ``cat-srv-<tag>`` (the "host"), the world and its
listeners (a public host, metadata, private, CGNAT and documentation addresses, a name
server) in ``cat-net-<tag>``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from codeactions_core.egress import EgressPolicy
from codeactions_core.execution.network import (
    Addressing,
    SandboxNetwork,
    host_ruleset,
    router_ruleset,
)
from codeactions_core.execution.network import router as router_module
from codeactions_core.settings import Settings
from tests.support import ROOT
from tests.support.netns import (
    DENIED_TARGETS,
    DNS,
    DNS_NAME,
    DOCUMENTATION,
    METADATA6,
    PUBLIC,
    SERVER_ADDRESS,
    Topology,
    ip,
    made_topology,
    nft_tables,
    wait_for,
)

needs_root = pytest.mark.skipif(
    os.geteuid() != 0
    or not shutil.which("ip", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"),
    reason="network namespaces need root and iproute2",
)


# --- without namespaces -------------------------------------------------------------------


def test_modes_without_egress_give_truthful_slots() -> None:
    none = SandboxNetwork(mode="none")
    none.start()
    assert none.acquire().fd is None and none.acquire().new_namespace
    assert none.protections() == {
        "network": "none",
        "egress_policy": None,
        "dns": [],
        "dns_relay": None,
        "ipv6": False,
        "problem": None,
    }
    host = SandboxNetwork(mode="host")
    host.start()
    slot = host.acquire()
    assert slot.fd is None and not slot.new_namespace
    assert host.protections()["network"] == "host"
    none.stop()
    host.stop()


@pytest.fixture
def tools_present(monkeypatch) -> None:
    """As if ``ip`` and libnftables were installed (whatever this machine has)."""
    monkeypatch.setattr(router_module.shutil, "which", lambda name, **kwargs: f"/usr/sbin/{name}")
    monkeypatch.setattr(router_module.Nftables, "library", classmethod(lambda cls: None))


def test_missing_capabilities_fall_back_to_none(monkeypatch, tmp_path, tools_present) -> None:
    monkeypatch.setattr(router_module, "effective_capabilities", lambda: 0)
    network = SandboxNetwork(mode="egress", dns=("10.53.0.53",), state_dir=str(tmp_path))
    network.start()
    assert network.mode == "none"
    assert network.acquire().new_namespace and network.acquire().fd is None
    assert "CAP_SYS_ADMIN and CAP_NET_ADMIN" in (network.problem or "")
    assert network.protections()["network"] == "none"
    assert network.protections()["egress_policy"] is None


def test_namespace_refused_is_named(monkeypatch, tmp_path, tools_present) -> None:
    monkeypatch.setattr(router_module, "effective_capabilities", lambda: -1)

    def refuse() -> None:
        raise OSError(errno.EPERM, "unshare")

    monkeypatch.setattr(router_module, "unshare_network", refuse)
    network = SandboxNetwork(mode="egress", dns=("10.53.0.53",), state_dir=str(tmp_path))
    network.start()
    assert network.mode == "none"
    assert network.problem == (
        "creating a network namespace failed: EPERM — "
        "the container needs CAP_SYS_ADMIN and CAP_NET_ADMIN"
    )


def test_missing_tools_are_named(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(router_module.shutil, "which", lambda *args, **kwargs: None)
    network = SandboxNetwork(mode="egress", state_dir=str(tmp_path))
    network.start()
    assert network.mode == "none" and network.problem == "ip not found: install iproute2"


def test_one_instance_per_process_and_settings(tmp_path) -> None:
    settings = Settings(data_dir=str(tmp_path), sandbox_network="none")
    first = SandboxNetwork.for_settings(settings)
    assert SandboxNetwork.for_settings(settings) is first
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write_end, b"same" if SandboxNetwork.for_settings(settings) is first else b"own")
        os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 16)
    os.close(read_end)
    os.waitpid(pid, 0)
    assert answer == b"own"


def test_nameservers_runs_can_reach_are_asked_directly() -> None:
    network = SandboxNetwork(mode="egress", dns=("10.53.0.53", "127.0.0.53", "2001:db8::1"))
    network._choose_nameservers()
    network.nameservers, network.mode = list(network.upstream), "egress"
    assert network.resolv_conf().splitlines()[0] == "nameserver 10.53.0.53"
    assert "127.0.0.53" not in network.resolv_conf()
    assert (
        network.protections()["dns"] == ["10.53.0.53"]
        and network.protections()["dns_relay"] is None
    )


def test_loopback_nameservers_are_relayed() -> None:
    network = SandboxNetwork(mode="egress", dns=("127.0.0.53", "::1"))
    network._choose_nameservers()
    assert network.upstream == ["127.0.0.53", "::1"] and network._relayed


def test_rulesets_put_nameservers_and_the_host_before_the_lists() -> None:
    policy = EgressPolicy.from_terms(["10.1.2.3:443", "10.9.0.0/16"], ["8.8.4.4", "1.1.1.1:53"])
    subnet = Addressing.parse("10.254.0.0/16").subnet
    text = router_ruleset(policy, ["10.53.0.53"], ["192.0.2.2"], subnet)
    order = [
        text.index(part)
        for part in (
            "@nameservers udp dport 53 accept",
            "ip daddr @host jump refuse",
            "ip daddr 10.1.2.3/32 meta l4proto { tcp, udp } th dport 443 accept",
            "ip daddr 10.9.0.0/16 accept",
            "ip daddr 8.8.4.4/32 jump refuse",
            "ip daddr 1.1.1.1/32 meta l4proto { tcp, udp } th dport 53 jump refuse",
            "ip daddr @denied jump refuse",
            "    accept\n",
        )
    ]
    assert order == sorted(order)
    assert "10.254.0.0/16" in text and "169.254.0.0/16" in text
    host = host_ruleset("codeactions_ca3", "ca3", "10.254.0.14", subnet, ["10.53.0.53"], True)
    assert "flags owner" in host and 'iifname != "ca*" oifname != "ca*" drop' in host


def test_addressing_splits_the_subnet() -> None:
    addressing = Addressing.parse("10.254.0.0/16")
    assert addressing.uplink(0) == ("10.254.0.1", "10.254.0.2")
    assert addressing.uplink(3) == ("10.254.0.13", "10.254.0.14")
    assert addressing.slot(0) == ("10.254.128.0", "10.254.128.1")
    assert addressing.uplinks == 8192 and addressing.slots == 16383
    assert addressing.relay == "10.254.255.254"


# --- inside a test topology -----------------------------------------------------------------


@pytest.fixture(scope="module")
def topology(tmp_path_factory) -> Iterator[Topology]:
    """The server and world namespaces, removed even when a test fails; nothing of them after."""
    with made_topology(tmp_path_factory.mktemp("netns")) as created:
        yield created


@pytest.fixture
def clean_server(topology: Topology) -> Iterator[Topology]:
    """After each test: no uplink, no table, forwarding off again in the server namespace."""
    yield topology
    assert wait_for(lambda: not uplinks(topology) and not nft_tables(topology.server), 5), (
        uplinks(topology),
        nft_tables(topology.server),
    )
    assert forwarding(topology) == "0"


def uplinks(topology: Topology) -> list[str]:
    links = json.loads(ip("-n", topology.server, "-j", "link", "show").stdout or "[]")
    return [link["ifname"] for link in links if link["ifname"].startswith("ca")]


def forwarding(topology: Topology) -> str:
    return subprocess.run(
        topology.exec_command("cat", "/proc/sys/net/ipv4/ip_forward"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


READ_ONLY_PROC_SYS = [
    "unshare",
    "-m",
    "--propagation",
    "private",
    "sh",
    "-c",
    'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec "$@"',
    "-",
]
"""Run a command the way Docker starts a server: with /proc/sys mounted read-only."""


def run_probe(
    topology: Topology, spec: dict, timeout: float = 30, read_only_proc_sys: bool = False
) -> dict:
    spec = {
        "world_netns": topology.network,
        "server_address": SERVER_ADDRESS,
        **spec,
        "network": {
            "state_dir": str(topology.directory / "state"),
            "dns": [DNS],
            **spec["network"],
        },
    }
    prefix = READ_ONLY_PROC_SYS if read_only_proc_sys else []
    result = subprocess.run(
        topology.exec_command(
            *prefix, sys.executable, "-m", "tests.support.netprobe", json.dumps(spec)
        ),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.splitlines()[-1])


e2e = pytest.mark.e2e


@e2e
@needs_root
def test_egress_policy_from_a_slot(clean_server: Topology) -> None:
    topology = clean_server
    seen_before = len(topology.connections())
    denied = [[address, 80] for address in DENIED_TARGETS.values()]
    report = run_probe(
        topology,
        {
            "network": {"allow": ["198.51.100.0/24", "10.77.0.1:8080"]},
            "targets": [
                [PUBLIC, 80],
                [DNS, 80],
                [METADATA6, 80],
                ["10.77.0.1", 8080],
                ["127.0.0.1", 18000],
                [SERVER_ADDRESS, 18000],
                *denied,
            ],
            "urls": [f"http://{DNS_NAME}/hello"],
            "names": [DNS_NAME],
        },
    )
    assert report["protections"] == {
        "network": "egress",
        "egress_policy": "nftables",
        "dns": [DNS],
        "dns_relay": None,
        "ipv6": False,
        "problem": None,
    }
    tcp = report["from_slot"]["tcp"]
    assert report["from_slot"]["uid"] == 65534
    # The public host and the one allowed host:port connect; the rest of that host does not.
    assert tcp[f"{PUBLIC}:80"] == "connected"
    assert tcp["10.77.0.1:8080"] == "connected"
    assert tcp["10.77.0.1:80"] == "refused"
    for address in DENIED_TARGETS.values():
        if address != "10.77.0.1":
            assert tcp[f"{address}:80"] == "refused", address
    # The name server answers on 53 only; names resolve through the sandbox's resolv.conf.
    assert report["resolv_conf"].startswith(f"nameserver {DNS}\n")
    assert report["from_slot"]["resolve"] == {DNS_NAME: PUBLIC}
    assert report["from_slot"]["http"][f"http://{DNS_NAME}/hello"].startswith("200 ")
    assert tcp[f"{DNS}:80"] == "refused"
    # No IPv6 at all: not even a route towards the metadata address.
    assert tcp[f"{METADATA6}:80"] == "unreachable"
    # The server's own addresses (global, uplink, the slot's own loopback) are refused.
    assert tcp[f"{SERVER_ADDRESS}:18000"] == "refused"
    uplink_address = next(key for key in tcp if key.startswith("10.254.0."))
    assert tcp[uplink_address] == "refused"
    assert report["host_listener_accepted"] == []
    # A listener in one slot: another slot, the host and the world cannot reach it.
    assert tcp[f"{report['slots'][1]}:9000"] == "refused"
    assert report["from_host"] == "timeout"
    assert report["from_world"] == "timeout"
    assert report["slot_listener"] == {"accepted": False}
    # The world saw exactly the allowed connections, nothing denied.
    seen = topology.connections()[seen_before:]
    assert {(entry["host"], entry["port"]) for entry in seen} == {(PUBLIC, 80), ("10.77.0.1", 8080)}
    # Slots are reused, and taking one is a queue operation.
    assert report["reused"]
    assert report["acquire_median_seconds"] < 0.001 and report["acquire_max_seconds"] < 0.05
    assert report["exclusive"]
    assert report["protections_after_stop"]["network"] == "none"


@e2e
@needs_root
def test_deny_entries_close_more(clean_server: Topology) -> None:
    topology = clean_server
    seen_before = len(topology.connections())
    report = run_probe(
        topology,
        {
            "network": {
                "global": ["198.51.100.0/24", "203.0.113.0/24"],
                "deny": [f"{DOCUMENTATION}:8081", f"{PUBLIC}/32"],
            },
            "targets": [[DOCUMENTATION, 80], [DOCUMENTATION, 8081], [PUBLIC, 80], [PUBLIC, 8081]],
        },
    )
    tcp = report["from_slot"]["tcp"]
    assert tcp[f"{DOCUMENTATION}:80"] == "connected"
    assert tcp[f"{DOCUMENTATION}:8081"] == "refused"
    assert tcp[f"{PUBLIC}:80"] == "refused" and tcp[f"{PUBLIC}:8081"] == "refused"
    seen = topology.connections()[seen_before:]
    assert [(entry["host"], entry["port"]) for entry in seen] == [(DOCUMENTATION, 80)]


def hold(topology: Topology, **options: object) -> tuple[subprocess.Popen[str], dict]:
    """A process holding a started SandboxNetwork in the server namespace, and what it reported."""
    spec = {
        "action": "hold",
        "network": {"state_dir": str(topology.directory / "state"), "dns": [DNS], **options},
    }
    holder = subprocess.Popen(
        topology.exec_command(sys.executable, "-m", "tests.support.netprobe", json.dumps(spec)),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    assert holder.stdout is not None
    line = holder.stdout.readline()
    if not line:
        holder.kill()
        holder.wait()
        pytest.fail("the holder did not start")
    return holder, json.loads(line)


def tables(topology: Topology) -> list[str]:
    return [line.split()[-1] for line in nft_tables(topology.server)]


@e2e
@needs_root
def test_owners_share_the_host_and_a_killed_one_leaves_nothing(clean_server: Topology) -> None:
    topology = clean_server
    state_dir = topology.directory / "state"
    first, first_ready = hold(topology)
    try:
        second, second_ready = hold(topology)
    except BaseException:
        first.kill()
        first.wait()
        raise
    try:
        assert first_ready["ready"]["network"] == second_ready["ready"]["network"] == "egress"
        names = {first_ready["uplink"], second_ready["uplink"]}
        assert len(names) == 2 and set(uplinks(topology)) == names
        assert set(tables(topology)) == {f"codeactions_{name}" for name in names}
        assert forwarding(topology) == "1"
        # SIGKILL: the namespaces, the veths and the owned host table die with the process.
        first.kill()
        first.wait()
        assert wait_for(lambda: uplinks(topology) == [second_ready["uplink"]], 5), uplinks(topology)
        assert tables(topology) == [f"codeactions_{second_ready['uplink']}"]
        assert forwarding(topology) == "1"  # the other process still needs it
        # A clean exit of the last one restores forwarding and removes its state.
        second.terminate()
        assert second.wait(10) == 0
        assert not uplinks(topology) and not tables(topology)
        assert forwarding(topology) == "0" and not list(state_dir.iterdir())
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
                process.wait()


@e2e
@needs_root
def test_a_restart_after_a_crash_restores_forwarding(clean_server: Topology) -> None:
    topology = clean_server
    state_dir = topology.directory / "state"
    holder, ready = hold(topology)
    holder.kill()
    holder.wait()
    assert ready["ready"]["network"] == "egress"
    assert wait_for(lambda: not uplinks(topology) and not nft_tables(topology.server), 5)
    # Forwarding stays on (another process might need it) until a later clean stop.
    assert forwarding(topology) == "1" and list(state_dir.iterdir())
    cycle = run_probe(topology, {"action": "cycle", "network": {}})
    assert cycle["protections"]["network"] == "egress"
    assert forwarding(topology) == "0"
    assert not list(state_dir.iterdir())


@e2e
@needs_root
def test_a_loopback_nameserver_is_relayed(clean_server: Topology) -> None:
    relay = Addressing.parse("10.254.0.0/16").relay
    report = run_probe(
        clean_server,
        {
            "local_dns": "127.0.0.53",
            "network": {"dns": ["127.0.0.53"], "allow": [PUBLIC]},
            "targets": [[relay, 80], ["127.0.0.53", 53]],
            "names": [DNS_NAME],
            "urls": [f"http://{DNS_NAME}/"],
        },
    )
    assert report["protections"]["dns"] == ["127.0.0.53"]
    assert report["protections"]["dns_relay"] == relay
    assert report["resolv_conf"].startswith(f"nameserver {relay}\n")
    assert report["from_slot"]["resolve"] == {DNS_NAME: PUBLIC}
    assert report["from_slot"]["http"][f"http://{DNS_NAME}/"].startswith("200 ")
    # The relay answers DNS, nothing else; the host's loopback stays out of reach.
    assert report["from_slot"]["tcp"][f"{relay}:80"] == "refused"
    assert report["from_slot"]["tcp"]["127.0.0.53:53"] == "refused"


@e2e
@needs_root
def test_without_owned_tables_a_restart_removes_what_a_crash_left(clean_server: Topology) -> None:
    """Kernels before 5.12 have no owned tables: the next start removes a dead process's table."""
    topology = clean_server
    holder, ready = hold(topology, unowned=True)
    holder.kill()
    holder.wait()
    assert ready["ready"]["network"] == "egress"
    assert wait_for(lambda: not uplinks(topology), 5)
    assert tables(topology) == [f"codeactions_{ready['uplink']}"]  # left behind by the crash
    run_probe(topology, {"action": "cycle", "network": {"unowned": True}})
    assert not tables(topology) and forwarding(topology) == "0"


@e2e
@needs_root
def test_a_read_only_proc_sys_is_no_obstacle(clean_server: Topology) -> None:
    """Docker mounts /proc/sys read-only: the network threads get a private writable view."""
    report = run_probe(
        clean_server,
        {
            "network": {"allow": [PUBLIC]},
            "targets": [[PUBLIC, 80], ["169.254.169.254", 80]],
            "names": [DNS_NAME],
            "acquire_rounds": 0,
        },
        read_only_proc_sys=True,
    )
    assert report["protections"]["network"] == "egress", report["protections"]
    assert report["from_slot"]["tcp"] == {
        f"{PUBLIC}:80": "connected",
        "169.254.169.254:80": "refused",
        **{
            key: value
            for key, value in report["from_slot"]["tcp"].items()
            if key.startswith("10.254.")
        },
        f"{SERVER_ADDRESS}:18000": "refused",
    }
    assert report["from_slot"]["resolve"] == {DNS_NAME: PUBLIC}


@e2e
@needs_root
def test_a_subnet_the_host_uses_is_refused(clean_server: Topology) -> None:
    topology = clean_server
    ip("-n", topology.server, "route", "add", "10.254.7.0/24", "via", "198.51.100.1")
    try:
        report = run_probe(topology, {"network": {}})
    finally:
        ip("-n", topology.server, "route", "del", "10.254.7.0/24")
    assert report["protections"]["network"] == "none"
    assert report["protections"]["problem"] == (
        "SANDBOX_NETWORK_SUBNET 10.254.0.0/16 overlaps the host's route to 10.254.7.0/24 "
        "(dev eth0): choose a range the host does not use"
    )
