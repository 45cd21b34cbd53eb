"""Per-run cgroups of the sandbox (stdlib only; imported by the zygote as a top-level module)."""

from __future__ import annotations

import os
import signal
import time

import linux

CGROUP_ROOT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("pids", "memory", "cpu")


class CgroupPlacer:
    """Per-run cgroups under this process's own cgroup, in each writable v1 controller.

    Creating a memory cgroup costs about half a millisecond, so groups are
    *slots*, created once and reused: a slot goes back to the free list when its
    supervisor has been reaped and no process is left in it.
    """

    def __init__(self, config: dict) -> None:
        self.bases: dict[str, str] = {}
        self._free: list[str] = []
        self._draining: list[str] = []
        self._count = 0
        own = own_cgroups()
        for controller in V1_CONTROLLERS:
            mount_point = os.path.join(CGROUP_ROOT, controller)
            if controller not in own or not os.path.isdir(mount_point):
                continue
            base = os.path.join(mount_point, own[controller].lstrip("/"), f"codeactions-{os.getpid()}")
            try:
                os.makedirs(base, exist_ok=True)
            except OSError:
                continue
            self.bases[controller] = base

    @property
    def controllers(self) -> set[str]:
        return set(self.bases)

    def acquire(self) -> str:
        """A slot with no process in it (in the zygote, before forking a supervisor)."""
        self._draining = [slot for slot in self._draining if not self._release_if_empty(slot)]
        if self._free:
            return self._free.pop()
        self._count += 1
        return f"slot-{self._count}"

    def release(self, slot: str) -> None:
        """The slot's supervisor was reaped (in the zygote's SIGCHLD handler: never blocks)."""
        if not self._release_if_empty(slot):
            self._draining.append(slot)

    def _release_if_empty(self, slot: str) -> bool:
        for base in self.bases.values():
            try:
                with open(os.path.join(base, slot, "cgroup.procs")) as handle:
                    if handle.read().strip():
                        return False
            except FileNotFoundError:
                pass
        self._free.append(slot)
        return True

    def configure(self, slot: str, limits: dict) -> None:
        """Set the slot's limits for the next run (in the zygote, before the clone)."""
        settings = {
            "pids": {"pids.max": limits.get("processes")},
            "memory": {"memory.limit_in_bytes": limits.get("cgroup_memory"),
                       "memory.memsw.limit_in_bytes": limits.get("cgroup_memory")},
            "cpu": {"cpu.shares": limits.get("cpu_shares") or 1024,
                    "cpu.cfs_quota_us": limits.get("cpu_quota_us") or -1},
        }
        for controller, base in self.bases.items():
            path = os.path.join(base, slot)
            os.makedirs(path, exist_ok=True)
            for knob, value in settings[controller].items():
                if value:
                    try:
                        linux.write_text(os.path.join(path, knob), str(value))
                    except OSError:
                        pass  # e.g. memsw without swap accounting

    def join_self(self, slot: str, limits: dict) -> None:
        """Move the calling process into the slot ("0": whoever writes; the child's first act).
        The cpu group only when CPU limits are set: otherwise it would cost and enforce nothing."""
        for controller, base in self.bases.items():
            if controller == "cpu" and not (limits.get("cpu_shares") or limits.get("cpu_quota_us")):
                continue
            linux.write_text(os.path.join(base, slot, "cgroup.procs"), "0")

    def remove_all(self) -> None:
        """At exit: kill stragglers and remove every slot and the base groups."""
        for base in self.bases.values():
            try:
                slots = [entry.path for entry in os.scandir(base) if entry.is_dir()]
            except OSError:
                continue
            for path in slots:
                kill_members(path)
            for path in slots + [base]:
                for _ in range(100):
                    try:
                        os.rmdir(path)
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.01)


def own_cgroups() -> dict[str, str]:
    groups = {}
    with open("/proc/self/cgroup") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(","):
                if controller:
                    groups[controller] = path
    return groups


def kill_members(path: str) -> None:
    try:
        with open(os.path.join(path, "cgroup.procs")) as handle:
            for line in handle:
                try:
                    os.kill(int(line), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
    except OSError:
        pass
