"""Which sandbox protections are in force, said truthfully, and what a deployment requires.

The zygote and the sandbox network report facts (``Zygote.protections``); this
module names the protections an operator can require with ``SANDBOX_REQUIRE``,
decides which of them hold, and says what a container needs for a missing one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from codeactions_core.errors import ConfigurationError
from codeactions_core.settings import SANDBOX_PROTECTIONS

NEEDS = {
    "namespaces": "mount, PID, IPC, UTS and network namespaces: run as root, or allow user "
    "namespaces (kernel.unprivileged_userns_clone=1); in a container CAP_SYS_ADMIN, or a seccomp "
    "profile that allows unshare/clone with namespace flags",
    "filesystem": "an allowlist root (mount namespace, tmpfs, bind mounts, pivot_root): "
    "CAP_SYS_ADMIN in the container, or user namespaces",
    "network": "a private network namespace per run: CAP_SYS_ADMIN (or user namespaces)",
    "egress": "the egress policy: root with CAP_NET_ADMIN and CAP_SYS_ADMIN, the `ip` and `nft` "
    "commands (Debian iproute2, nftables) and net.ipv4.ip_forward writable",
    "seccomp": "libseccomp (Debian libseccomp2) and a container seccomp profile that allows "
    "seccomp(2)/prctl(PR_SET_SECCOMP) (Docker's default profile does)",
    "uid": "one uid per sandbox: run the server as root (CAP_SETUID, CAP_SETGID) with "
    "SANDBOX_UID_COUNT > 0",
    "cgroups": "a writable cgroup: v2 delegated to the container (e.g. Docker --cgroupns=private "
    "with the cpu, memory and pids controllers enabled) or v1 controllers mounted writable",
    "cpu": "the cpu cgroup controller (see cgroups)",
}
assert tuple(NEEDS) == SANDBOX_PROTECTIONS


def in_force(protections: Mapping[str, Any]) -> dict[str, bool]:
    """Each named protection: whether it holds."""
    cgroups = protections.get("cgroups") or {}
    controllers = (
        set(cgroups.get("controllers", [])) if isinstance(cgroups, Mapping) else set(cgroups)
    )
    namespaces = set(protections.get("namespaces") or [])
    return {
        "namespaces": {"mount", "pid", "ipc", "uts"} <= namespaces,
        "filesystem": protections.get("filesystem") == "allowlist root",
        "network": "network" in namespaces and protections.get("network") in ("none", "egress"),
        "egress": protections.get("network") == "egress" and bool(protections.get("egress_policy")),
        "seccomp": bool(protections.get("seccomp")),
        "uid": protections.get("identity") == "own uid per sandbox",
        "cgroups": {"memory", "pids"} <= controllers,
        "cpu": "cpu" in controllers,
    }


def check_required(protections: Mapping[str, Any], required: Iterable[str]) -> None:
    """ConfigurationError naming every required protection that is off, why, and what it needs."""
    wanted = list(required)
    holding = in_force(protections)
    off = dict(protections.get("off") or {})
    if protections.get("problem"):
        off.setdefault("egress", str(protections["problem"]))
    missing = [name for name in wanted if not holding[name]]
    if missing:
        lines = [
            f"- {name}: off ({off.get(name) or off.get('namespaces') or 'not available here'}); "
            f"needs {NEEDS[name]}"
            for name in missing
        ]
        raise ConfigurationError(
            "the sandbox lacks protections FLOWS_CODE_ACTIONS_SANDBOX_REQUIRE asks for:\n"
            + "\n".join(lines)
        )


def describe_protections(protections: Mapping[str, Any]) -> str:
    """One line for the start log: what is on and what is off, and why."""
    holding = in_force(protections)
    cgroups = protections.get("cgroups") or {}
    details = {
        "filesystem": protections.get("filesystem"),
        "network": protections.get("network"),
        "egress": protections.get("egress_policy"),
        "uid": protections.get("identity"),
        "cgroups": f"v{cgroups.get('version')} {','.join(cgroups.get('controllers', []))}"
        if isinstance(cgroups, Mapping) and cgroups.get("version")
        else None,
    }
    on = [
        f"{name}={details[name]}" if details.get(name) else name
        for name, ok in holding.items()
        if ok
    ]
    off = dict(protections.get("off") or {})
    if protections.get("problem"):
        off["egress"] = str(protections["problem"])
    missing = [
        f"{name} ({off[name]})" if name in off else name for name, ok in holding.items() if not ok
    ]
    return "on: " + ", ".join(on) + (" | OFF: " + "; ".join(missing) if missing else "")
