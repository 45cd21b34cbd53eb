"""The values of a run's limits, as the knobs of cgroup v1 or v2 take them."""

from __future__ import annotations

PERIOD_US = 100_000
DEFAULT_SHARES = 1024
MIN_QUOTA_US = 1000


def knob_values(version: int, limits: dict) -> list[tuple[str, str, str]]:
    """(controller, knob, value) for one run's ``limits``, in writing order.

    ``cpu_quota_us`` is CPU time per 100 000 µs period (0: no cap); ``cpu_shares``
    a v1 weight (0: the default 1024), mapped to v2's cpu.weight (1024 -> 100).
    """
    processes = int(limits.get("processes") or 0)
    memory = int(limits.get("cgroup_memory") or 0)
    quota = int(limits.get("cpu_quota_us") or 0)
    shares = int(limits.get("cpu_shares") or 0) or DEFAULT_SHARES
    pids = str(processes) if processes > 0 else "max"
    if version == 1:
        memory_value = str(memory) if memory > 0 else "-1"
        return [
            ("pids", "pids.max", pids),
            ("memory", "memory.limit_in_bytes", memory_value),
            ("memory", "memory.memsw.limit_in_bytes", memory_value),
            ("cpu", "cpu.cfs_period_us", str(PERIOD_US)),
            ("cpu", "cpu.cfs_quota_us", str(max(quota, MIN_QUOTA_US)) if quota > 0 else "-1"),
            ("cpu", "cpu.shares", str(max(shares, 2))),
        ]
    weight = max(1, min(10000, round(shares * 100 / DEFAULT_SHARES)))
    return [
        ("pids", "pids.max", pids),
        ("memory", "memory.max", str(memory) if memory > 0 else "max"),
        ("memory", "memory.swap.max", "0" if memory > 0 else "max"),
        ("cpu", "cpu.max", f"{max(quota, MIN_QUOTA_US) if quota > 0 else 'max'} {PERIOD_US}"),
        ("cpu", "cpu.weight", str(weight)),
    ]
