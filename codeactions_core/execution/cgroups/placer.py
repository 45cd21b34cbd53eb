"""Per-run cgroups ("slots") of the sandbox: picked, configured and recycled by the zygote,
joined by the child."""

from __future__ import annotations

import collections

from .files import kill_members, read_at, write_at
from .groups import Groups
from .hierarchies import Hierarchy, HierarchySetup
from .knobs import knob_values

LEFTOVER_BYTES = 1 << 20
"""A reused slot may carry at most this much charged memory (plus swap) into the next run:
above it, the zygote reclaims (v1 ``memory.force_empty``, v2 ``memory.reclaim``) and, if the
charge stays (tmpfs pages still referenced elsewhere, kernel memory), replaces the slot."""


class CgroupPlacer:
    """Per-run cgroups ("slots") under this process's own cgroup, on cgroup v1 or v2.

    Creating a memory cgroup costs about half a millisecond, so slots are created
    once and reused: a slot goes back to use when its supervisor has been reaped,
    no process is left in it and its memory charge has been reclaimed (or the slot
    replaced by a fresh one).

    ``config`` chooses the hierarchies (see ``HierarchySetup``); ``groups`` makes and removes
    groups (a fake cgroupfs's in tests).
    """

    def __init__(self, config: dict, groups: Groups | None = None) -> None:
        self._groups = groups or Groups()
        self._setup = HierarchySetup(config, self._groups)
        self.version = self._setup.version
        self.problem = self._setup.problem
        self._hierarchies: list[Hierarchy] = list(self._setup.hierarchies)
        self._free: list[str] = []
        self._draining: list[str] = []
        self._released: collections.deque[str] = collections.deque()
        """Appended by the SIGCHLD handler."""
        self._written: dict[str, dict[tuple[int, str], str]] = {}
        self._count = 0

    # -- the interface the zygote and the child use ---------------------------------------

    @property
    def controllers(self) -> set[str]:
        """The controllers every run is placed in (empty: cgroups unusable here)."""
        return {name for hierarchy in self._hierarchies for name in hierarchy.controllers}

    def protections(self) -> dict:
        """What the placer enforces, for the protections /health shows."""
        knobs = set().union(*(hierarchy.knobs for hierarchy in self._hierarchies))
        if self.version == 1:
            cap, weight = "cpu.cfs_quota_us", "cpu.shares"
            swap, reclaim = "memory.memsw.limit_in_bytes", "memory.force_empty"
        else:
            cap, weight, swap, reclaim = (
                "cpu.max",
                "cpu.weight",
                "memory.swap.max",
                "memory.reclaim",
            )
        if "memory" in self.controllers:
            reused = reclaim if reclaim in knobs else "replace"
        else:
            reused = None
        return {
            "version": self.version,
            "controllers": sorted(self.controllers),
            "cpu_cap": cap in knobs,
            "cpu_weight": weight in knobs,
            "swap_limit": swap in knobs,
            "reused_slot_reclaim": reused,
        }

    def acquire(self) -> str:
        """A slot with no process and (almost) no memory charge in it (in the zygote, before
        the clone)."""
        while self._released:
            slot = self._released.popleft()
            if slot not in self._draining and slot not in self._free:
                self._draining.append(slot)
        if self._draining:
            draining, self._draining = self._draining, []
            for slot in draining:
                if self._is_empty(slot):
                    self._free.append(slot)
                else:
                    # what a finished run left running (no PID namespace): killed, checked next time
                    kill_members(self._hierarchies[0].base_fd, slot)
                    self._draining.append(slot)
        while self._free:
            slot = self._free.pop()
            if self._scrub(slot):
                return slot
        return self._create()

    def release(self, slot: str) -> None:
        """The slot's run is over: its first process was reaped (in the zygote's SIGCHLD
        handler: only queues it; the next ``acquire`` kills what the run left and checks the
        slot is empty)."""
        self._released.append(slot)

    def configure(self, slot: str, limits: dict) -> None:
        """Set the slot's limits for the next run (in the zygote, before the clone).
        Values the slot already has are not written again."""
        written = self._written.setdefault(slot, {})
        for index, hierarchy in enumerate(self._hierarchies):
            settings = self._settings(hierarchy, limits)
            changed = [
                (knob, value) for knob, value in settings if written.get((index, knob)) != value
            ]
            if self.version == 1 and any(knob.startswith("memory.") for knob, _ in changed):
                # memsw >= memory at every step, whether the limit goes up or down
                memory = [(knob, value) for knob, value in settings if knob.startswith("memory.")]
                if "memory.memsw.limit_in_bytes" in hierarchy.knobs:
                    memory.insert(0, ("memory.memsw.limit_in_bytes", "-1"))
                others = [
                    (knob, value) for knob, value in changed if not knob.startswith("memory.")
                ]
                changed = memory + others
            for knob, value in changed:
                try:
                    write_at(hierarchy.base_fd, f"{slot}/{knob}", value)
                except OSError as exc:
                    written.clear()
                    raise OSError(
                        exc.errno, f"cgroup {slot}/{knob} = {value}: {exc.strerror}"
                    ) from None
                written[(index, knob)] = value

    def join_self(self, slot: str, limits: dict | None = None) -> None:
        """Move the calling process into the slot, in every controller (the child's first act,
        as root). ``limits`` is unused: every run is in the cpu controller, for its cap and its
        equal weight."""
        for hierarchy in self._hierarchies:
            write_at(hierarchy.base_fd, f"{slot}/cgroup.procs", "0")

    def remove_all(self) -> None:
        """At exit: kill what is left in the slots and remove them, the zygote's leaf and the
        base groups."""
        self._hierarchies = []
        self._setup.remove()
        self._free.clear()
        self._draining.clear()
        self._released.clear()
        self._written.clear()

    # -- slots -----------------------------------------------------------------------------

    def _create(self) -> str:
        self._count += 1
        slot = f"slot-{self._count}"
        for hierarchy in self._hierarchies:
            self._groups.make(hierarchy.base_fd, slot)
        return slot

    def _is_empty(self, slot: str) -> bool:
        """No process left in the slot (v2: the subtree is unpopulated; v1: every process joins
        the first hierarchy first, and cannot leave it: that one tells)."""
        hierarchy = self._hierarchies[0]
        try:
            if self.version == 2:
                return "populated 0" in read_at(hierarchy.base_fd, f"{slot}/cgroup.events")
            return not read_at(hierarchy.base_fd, f"{slot}/cgroup.procs").strip()
        except FileNotFoundError:
            return True

    def _scrub(self, slot: str) -> bool:
        """Before reuse: reclaim what the last run left charged; False (and the slot removed)
        when the charge stays, e.g. pages of a tmpfs that outlived the run."""
        memory = next((h for h in self._hierarchies if "memory" in h.controllers), None)
        if memory is None:
            return True
        if self._charged(memory, slot) <= LEFTOVER_BYTES:
            return True
        try:
            if self.version == 1:
                write_at(memory.base_fd, f"{slot}/memory.force_empty", "0")
            elif "memory.reclaim" in memory.knobs:
                write_at(memory.base_fd, f"{slot}/memory.reclaim", str(self._charged(memory, slot)))
        except OSError:
            pass  # EAGAIN: not all of it could be reclaimed; EBUSY: a process is back (cannot be)
        if self._charged(memory, slot) <= LEFTOVER_BYTES:
            return True
        self._written.pop(slot, None)
        for hierarchy in self._hierarchies:
            try:
                self._groups.kill_and_remove(hierarchy.base_fd, [slot])
            except OSError:
                pass  # left in place, never used again
        return False

    def _charged(self, memory: Hierarchy, slot: str) -> int:
        """Memory (and swap) still charged to a slot, in bytes."""
        if self.version == 1:
            knobs = [
                "memory.memsw.usage_in_bytes"
                if "memory.memsw.usage_in_bytes" in memory.knobs
                else "memory.usage_in_bytes"
            ]
        else:
            knobs = ["memory.current"]
            if "memory.swap.current" in memory.knobs:
                knobs.append("memory.swap.current")
        try:
            return sum(int(read_at(memory.base_fd, f"{slot}/{knob}")) for knob in knobs)
        except (OSError, ValueError):
            return 0

    def _settings(self, hierarchy: Hierarchy, limits: dict) -> list[tuple[str, str]]:
        """The knobs of a hierarchy for ``limits``, in the order to write them (those that exist
        here)."""
        values = knob_values(self.version or 1, limits)
        return [
            (knob, value)
            for controller, knob, value in values
            if controller in hierarchy.controllers and knob in hierarchy.knobs
        ]
