"""Per-run cgroups of the sandbox, on cgroup v1 or v2.

Stdlib only: the zygote (``python -I -S``) imports it as the top-level module ``cgroups``.

The placer finds and opens its cgroup directories once, in ``__init__``, while
the zygote still sees the host's ``/sys/fs/cgroup``. Everything afterwards —
creating, configuring, emptying and removing slots, and a child joining its
slot — goes through those directory descriptors (``*at`` calls with relative
paths), never through a path under ``/sys``: the zygote pivots into a root
without it, and its children are clones of it that inherit the descriptors
(close-on-exec, and closed by the child's ``install_fds`` anyway).

Layout. v1: ``<controller mount>/<own cgroup>/codeactions-<pid>/slot-N`` in each
writable hierarchy of pids, memory and cpu. v2: ``<own cgroup>/codeactions-<pid>/``
holds ``zygote/`` (the zygote moves there: a cgroup whose children have
controllers enabled may hold no process) and the slots; the controllers are
enabled in the ``cgroup.subtree_control`` of the own cgroup and of the base.
When the own cgroup refuses that because it holds processes (a container's
namespace root, a systemd service with ``Delegate=yes``), they are first moved
into a leaf ``codeactions-leaf`` below it (what docker-in-docker does), unless
``cgroup_evacuate`` is false in the configuration. Where the mounted cgroupfs is
read-only (Docker mounts it so in unprivileged containers), the placer mounts a
new instance of its own with fsopen/fsmount, attached nowhere (that needs
CAP_SYS_ADMIN; in a private cgroup namespace it shows only the container's tree).

Slots: a released slot is reused once it is empty (what a finished run left
running is killed first) and its memory charge is back under LEFTOVER_BYTES;
base groups of zygotes that died without cleaning up are removed at start-up.
"""

from __future__ import annotations

import collections
import ctypes
import errno
import os
import signal
import time

WANTED = ("pids", "memory", "cpu")  # also the order a child joins them (v1)
PERIOD_US = 100_000
DEFAULT_SHARES = 1024
MIN_QUOTA_US = 1000
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
LEFTOVER_BYTES = 1 << 20
"""A reused slot may carry at most this much charged memory (plus swap) into the next run:
above it, the zygote reclaims (v1 ``memory.force_empty``, v2 ``memory.reclaim``) and, if the
charge stays (tmpfs pages still referenced elsewhere, kernel memory), replaces the slot."""
ZYGOTE_LEAF = "zygote"
EVACUATED_LEAF = "codeactions-leaf"
BASE_PREFIX = "codeactions-"
PROBE = "knob-probe"
REMOVE_TIMEOUT = 3.0

SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 430, 431, 432  # the same on every architecture but alpha
FSCONFIG_SET_FLAG, FSCONFIG_CMD_CREATE = 0, 6
FSOPEN_CLOEXEC = FSMOUNT_CLOEXEC = 1

MOUNT_FLAGS = frozenset({"rw", "ro"})


class Mount:
    """A mounted cgroup hierarchy, from /proc/self/mountinfo."""

    def __init__(self, point: str, root: str, options: frozenset[str], read_only: bool) -> None:
        self.point = point
        self.root = root  # the mount's root inside the hierarchy (a bind mount's may not be "/")
        self.options = options  # v1: its controllers (and flags such as xattr)
        self.read_only = read_only


class _Hierarchy:
    """One mounted hierarchy the placer uses: its controllers, the own cgroup's and the base's descriptors."""

    def __init__(
        self, controllers: frozenset[str], parent_fd: int, base_fd: int, knobs: set[str]
    ) -> None:
        self.controllers = controllers
        self.parent_fd = parent_fd
        self.base_fd = base_fd
        self.knobs = knobs


class CgroupPlacer:
    """Per-run cgroups ("slots") under this process's own cgroup, on cgroup v1 or v2.

    Creating a memory cgroup costs about half a millisecond, so slots are created
    once and reused: a slot goes back to use when its supervisor has been reaped,
    no process is left in it and its memory charge has been reclaimed (or the slot
    replaced by a fresh one).

    Configuration keys (all optional): ``cgroup_version`` (1 or 2: only try that one),
    ``cgroup_controllers`` (default pids, memory, cpu), ``cgroup_evacuate`` (v2, default
    true), ``cgroup_fresh_mount`` (always reach the hierarchies through a new mount of our
    own, as is done anyway when the mounted one is read-only), and for tests
    ``cgroup_v2_mount`` / ``cgroup_path`` (a v2 hierarchy and the own cgroup in it,
    instead of those of /proc/self).
    """

    def __init__(self, config: dict) -> None:
        self.version: int | None = None
        self.problem = ""
        self._hierarchies: list[_Hierarchy] = []
        self._base_name = f"{BASE_PREFIX}{os.getpid()}"
        self._zygote_moved = False
        self._free: list[str] = []
        self._draining: list[str] = []
        self._released: collections.deque[str] = (
            collections.deque()
        )  # appended by the SIGCHLD handler
        self._written: dict[str, dict[tuple[int, str], str]] = {}
        self._count = 0
        wanted = tuple(config.get("cgroup_controllers") or WANTED)
        forced = config.get("cgroup_version")
        try:
            v1_mounts, v2_mount = cgroup_mounts()
            own = own_cgroups()
        except (OSError, ValueError) as exc:
            self.problem = f"cannot read this process's cgroups: {exc}"
            return
        if config.get("cgroup_v2_mount"):
            v1_mounts, v2_mount = [], Mount(config["cgroup_v2_mount"], "/", frozenset(), False)
        if config.get("cgroup_path"):
            own[""] = config["cgroup_path"]
        fresh = bool(config.get("cgroup_fresh_mount", False))
        if forced in (None, 1) and v1_mounts:
            self._open_v1(v1_mounts, own, wanted, fresh)
        if not self._hierarchies and forced in (None, 2) and v2_mount and "" in own:
            self._open_v2(
                v2_mount, own[""], wanted, fresh, bool(config.get("cgroup_evacuate", True))
            )
        if not self._hierarchies and not self.problem:
            self.problem = "no cgroup hierarchy with a writable pids, memory or cpu controller"

    # -- start-up (the only place that uses paths) ------------------------------------------

    def _open_v1(
        self, mounts: list[Mount], own: dict[str, str], wanted: tuple, fresh: bool
    ) -> None:
        seen: set[str] = set()
        for mount in mounts:
            mine = frozenset(name for name in wanted if name in mount.options and name not in seen)
            if not mine:
                continue
            parent_fd = base_fd = -1
            try:
                parent_fd = open_own_group(
                    mount, "cgroup", own.get(next(iter(mine)), ""), fresh=fresh
                )
                self._clean_stale(parent_fd)
                base_fd = self._open_base(parent_fd)
                knobs = set(os.listdir(base_fd))
            except OSError as exc:
                self._note(f"cgroup v1 {','.join(sorted(mine))}: {exc}")
                for fd in (base_fd, parent_fd):
                    if fd >= 0:
                        os.close(fd)
                continue
            seen |= mine
            self._hierarchies.append(_Hierarchy(mine, parent_fd, base_fd, knobs))
        if self._hierarchies:
            self.version = 1
            order = {name: index for index, name in enumerate(WANTED)}
            self._hierarchies.sort(key=lambda h: min(order.get(name, 99) for name in h.controllers))

    def _open_v2(
        self, mount: Mount, own_path: str, wanted: tuple, fresh: bool, evacuate: bool
    ) -> None:
        if os.path.basename(own_path) == EVACUATED_LEAF:  # an earlier zygote moved the server here
            own_path = os.path.dirname(own_path)
        parent_fd = base_fd = -1
        try:
            parent_fd = open_own_group(mount, "cgroup2", own_path, fresh=fresh)
            available = set(read_at(parent_fd, "cgroup.controllers").split())
            mine = [name for name in wanted if name in available]
            if not mine:
                raise OSError(
                    errno.ENOTSUP, f"none of {', '.join(wanted)} is available in {own_path}"
                )
            enabled = self._enable(parent_fd, mine, evacuate=evacuate)
            if not enabled:
                raise OSError(errno.EBUSY, f"could not enable {', '.join(mine)} below {own_path}")
            self._clean_stale(parent_fd)
            base_fd = self._open_base(parent_fd)
            self._make_group(base_fd, ZYGOTE_LEAF)
            write_at(base_fd, f"{ZYGOTE_LEAF}/cgroup.procs", str(os.getpid()))
            self._zygote_moved = True
            enabled = self._enable(base_fd, enabled, evacuate=False)
            if not enabled:
                raise OSError(errno.EBUSY, "could not enable the controllers for the slots")
            self._make_group(
                base_fd, PROBE
            )  # the knobs a slot has (the base's are its parent's choice)
            try:
                probe_fd = os.open(PROBE, DIR_FLAGS, dir_fd=base_fd)
                try:
                    knobs = set(os.listdir(probe_fd))
                finally:
                    os.close(probe_fd)
            finally:
                self._remove_group(base_fd, PROBE)
        except OSError as exc:
            self._note(f"cgroup v2: {exc}")
            if base_fd >= 0:
                self._leave_base(parent_fd)
                try:
                    self._remove_group(base_fd, ZYGOTE_LEAF)
                    self._remove_group(parent_fd, self._base_name)
                except OSError:
                    pass
                os.close(base_fd)
            if parent_fd >= 0:
                os.close(parent_fd)
            return
        self.version = 2
        self._hierarchies.append(_Hierarchy(frozenset(enabled), parent_fd, base_fd, knobs))

    def _note(self, problem: str) -> None:
        self.problem = f"{self.problem}; {problem}" if self.problem else problem

    def _enable(self, dir_fd: int, names: list[str], *, evacuate: bool) -> list[str]:
        """Enable ``names`` in a v2 group's subtree_control; the ones enabled. EBUSY means the
        group holds processes (only the real root may): with ``evacuate``, they move to a leaf."""
        missing = [name for name in names if name not in subtree_control(dir_fd)]
        if missing:
            try:
                write_at(dir_fd, "cgroup.subtree_control", " ".join(f"+{name}" for name in missing))
            except OSError as exc:
                if exc.errno == errno.EBUSY and evacuate:
                    self._evacuate(dir_fd)
                for name in missing:  # one by one: one refused controller must not cost the others
                    try:
                        write_at(dir_fd, "cgroup.subtree_control", f"+{name}")
                    except OSError:
                        pass
        enabled = subtree_control(dir_fd)
        return [name for name in names if name in enabled]

    def _evacuate(self, dir_fd: int) -> None:
        """v2: move every process of a group into its leaf ``codeactions-leaf`` (no internal processes)."""
        self._make_group(dir_fd, EVACUATED_LEAF)
        for _ in range(10):
            pids = read_at(dir_fd, "cgroup.procs").split()
            if not pids:
                return
            for pid in pids:
                try:
                    write_at(dir_fd, f"{EVACUATED_LEAF}/cgroup.procs", pid)
                except OSError:
                    pass  # it exited, or is a kernel thread

    def _open_base(self, parent_fd: int) -> int:
        self._make_group(parent_fd, self._base_name)
        return os.open(self._base_name, DIR_FLAGS, dir_fd=parent_fd)

    def _clean_stale(self, parent_fd: int) -> None:
        """Remove what zygotes that are gone left behind (killed before ``remove_all``), and an
        earlier base of our own pid (a zygote restarted in a fresh PID namespace)."""
        for entry in os.scandir(parent_fd):
            name = entry.name
            if not (
                name.startswith(BASE_PREFIX)
                and name[len(BASE_PREFIX) :].isdigit()
                and entry.is_dir()
            ):
                continue
            if name != self._base_name and pid_alive(int(name[len(BASE_PREFIX) :])):
                continue
            try:
                fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
            except OSError:
                continue
            try:
                self._remove_children(
                    fd, [entry.name for entry in os.scandir(fd) if entry.is_dir()]
                )
                if name != self._base_name:
                    self._remove_group(parent_fd, name)
            except OSError:
                pass  # not ours to clean (another user's), or busy
            finally:
                os.close(fd)

    # -- the interface the zygote and the child use ---------------------------------------

    @property
    def controllers(self) -> set[str]:
        """The controllers every run is placed in (empty: cgroups unusable here)."""
        return {name for hierarchy in self._hierarchies for name in hierarchy.controllers}

    def describe(self) -> dict:
        """What the placer does, for /health."""
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
        """A slot with no process and (almost) no memory charge in it (in the zygote, before the clone)."""
        while self._released:
            slot = self._released.popleft()
            if slot not in self._draining and slot not in self._free:
                self._draining.append(slot)
        if self._draining:
            draining, self._draining = self._draining, []
            for slot in draining:
                if self._is_empty(slot):
                    self._free.append(slot)
                else:  # what a finished run left running (no PID namespace): killed, checked next time
                    kill_members(self._hierarchies[0].base_fd, slot)
                    self._draining.append(slot)
        while self._free:
            slot = self._free.pop()
            if self._scrub(slot):
                return slot
        return self._create()

    def release(self, slot: str) -> None:
        """The slot's run is over: its first process was reaped (in the zygote's SIGCHLD handler:
        only queues it; the next ``acquire`` kills what the run left and checks the slot is empty)."""
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
        """Move the calling process into the slot, in every controller (the child's first act, as root).
        ``limits`` is unused: every run is in the cpu controller, for its cap and its equal weight."""
        for hierarchy in self._hierarchies:
            write_at(hierarchy.base_fd, f"{slot}/cgroup.procs", "0")

    def remove_all(self) -> None:
        """At exit: kill what is left in the slots and remove them, the zygote's leaf and the base groups."""
        hierarchies, self._hierarchies = self._hierarchies, []
        for hierarchy in hierarchies:
            try:
                slots = [
                    entry.name
                    for entry in os.scandir(hierarchy.base_fd)
                    if entry.is_dir() and entry.name != ZYGOTE_LEAF
                ]
                self._remove_children(hierarchy.base_fd, slots)
                if self._zygote_moved:
                    self._leave_base(hierarchy.parent_fd)
                    self._remove_group(hierarchy.base_fd, ZYGOTE_LEAF)
                self._remove_group(hierarchy.parent_fd, self._base_name)
            except OSError:
                pass
            finally:
                os.close(hierarchy.base_fd)
                os.close(hierarchy.parent_fd)
        self._free.clear()
        self._draining.clear()
        self._released.clear()
        self._written.clear()

    # -- slots -----------------------------------------------------------------------------

    def _create(self) -> str:
        self._count += 1
        slot = f"slot-{self._count}"
        for hierarchy in self._hierarchies:
            self._make_group(hierarchy.base_fd, slot)
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
                self._remove_children(hierarchy.base_fd, [slot])
            except OSError:
                pass  # left in place, never used again
        return False

    def _charged(self, memory: _Hierarchy, slot: str) -> int:
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

    def _settings(self, hierarchy: _Hierarchy, limits: dict) -> list[tuple[str, str]]:
        """The knobs of a hierarchy for ``limits``, in the order to write them (those that exist here)."""
        values = knob_values(self.version or 1, limits)
        return [
            (knob, value)
            for controller, knob, value in values
            if controller in hierarchy.controllers and knob in hierarchy.knobs
        ]

    def _remove_children(self, dir_fd: int, names: list[str]) -> None:
        """Kill every process in the groups ``names`` under ``dir_fd`` and remove the groups."""
        deadline = time.monotonic() + REMOVE_TIMEOUT
        pending = list(names)
        while pending:
            for name in pending:
                kill_members(dir_fd, name)
            pending = [name for name in pending if not self._remove_group(dir_fd, name)]
            if not pending or time.monotonic() > deadline:
                return
            time.sleep(
                0.01
            )  # killed processes take a moment to leave (polling, bounded by the deadline)

    def _leave_base(self, parent_fd: int) -> None:
        """v2: move the zygote out of its leaf (back to its own group, or the evacuated leaf)."""
        for name in (".", EVACUATED_LEAF):
            try:
                write_at(parent_fd, f"{name}/cgroup.procs", str(os.getpid()))
                return
            except OSError:
                continue

    # seams for a fake cgroupfs in tests (plain directories do not create interface files)

    def _make_group(self, dir_fd: int, name: str) -> None:
        try:
            os.mkdir(name, dir_fd=dir_fd)
        except FileExistsError:
            pass

    def _remove_group(self, dir_fd: int, name: str) -> bool:
        """rmdir a group; True when it is gone, False while processes keep it busy (other errors raise)."""
        try:
            os.rmdir(name, dir_fd=dir_fd)
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                return False
            raise
        return True


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


def cgroup_mounts(mountinfo: str = "/proc/self/mountinfo") -> tuple[list[Mount], Mount | None]:
    """The mounted v1 hierarchies and the first cgroup2 mount."""
    v1: list[Mount] = []
    v2: Mount | None = None
    with open(mountinfo) as handle:
        for line in handle:
            fields = line.split()
            try:
                separator = fields.index("-")
            except ValueError:
                continue
            read_only = "ro" in fields[5].split(",")
            fstype = fields[separator + 1]
            options = fields[separator + 3] if len(fields) > separator + 3 else ""
            if fstype not in ("cgroup", "cgroup2"):
                continue
            options_set = frozenset(options.split(",")) - MOUNT_FLAGS
            read_only = read_only or "ro" in options.split(",")
            mount = Mount(unescape(fields[4]), unescape(fields[3]), options_set, read_only)
            if fstype == "cgroup2" and v2 is None:
                v2 = mount
            elif fstype == "cgroup":
                v1.append(mount)
    return v1, v2


def fresh_mount(fstype: str, flags: frozenset[str] = frozenset()) -> int:
    """A new mount of a cgroup hierarchy that no path leads to (fsopen/fsmount: nothing to
    unmount later); a descriptor of its root. Inside a cgroup namespace its root is the
    namespace's: the way to a writable view where the container's mount is read-only."""
    libc = ctypes.CDLL(None, use_errno=True)

    def check(result: int, what: str) -> int:
        if result < 0:
            number = ctypes.get_errno()
            raise OSError(number, f"{what}: {os.strerror(number)}")
        return result

    context = check(
        libc.syscall(ctypes.c_long(SYS_FSOPEN), fstype.encode(), ctypes.c_uint(FSOPEN_CLOEXEC)),
        f"fsopen {fstype}",
    )
    try:
        for flag in sorted(flag for flag in flags if "=" not in flag):
            check(
                libc.syscall(
                    ctypes.c_long(SYS_FSCONFIG),
                    ctypes.c_int(context),
                    ctypes.c_uint(FSCONFIG_SET_FLAG),
                    flag.encode(),
                    None,
                    ctypes.c_int(0),
                ),
                f"fsconfig {flag}",
            )
        check(
            libc.syscall(
                ctypes.c_long(SYS_FSCONFIG),
                ctypes.c_int(context),
                ctypes.c_uint(FSCONFIG_CMD_CREATE),
                None,
                None,
                ctypes.c_int(0),
            ),
            f"creating a {fstype} mount",
        )
        mount = check(
            libc.syscall(
                ctypes.c_long(SYS_FSMOUNT),
                ctypes.c_int(context),
                ctypes.c_uint(FSMOUNT_CLOEXEC),
                ctypes.c_uint(0),
            ),
            "fsmount",
        )
    finally:
        os.close(context)
    try:
        return os.open(".", DIR_FLAGS, dir_fd=mount)
    finally:
        os.close(mount)


def open_own_group(mount: Mount, fstype: str, own_path: str, *, fresh: bool) -> int:
    """A descriptor of this process's group in a hierarchy: through the mount, or through a
    fresh mount when that one is read-only (or ``fresh``)."""
    if not fresh and not mount.read_only:
        relative = relative_path(own_path, mount.root)
        if relative is None:
            raise OSError(
                errno.ENOENT, f"this process's cgroup {own_path} is outside {mount.point}"
            )
        return os.open(os.path.join(mount.point, relative.lstrip("/")), DIR_FLAGS)
    if not own_path.startswith("/"):
        raise OSError(
            errno.ENOENT, f"this process's cgroup {own_path} is outside its cgroup namespace"
        )
    root = fresh_mount(fstype, mount.options if fstype == "cgroup" else frozenset())
    try:
        return os.open(own_path.lstrip("/") or ".", DIR_FLAGS, dir_fd=root)
    finally:
        os.close(root)


def unescape(field: str) -> str:
    """mountinfo's octal escapes (\\040 for a space)."""
    if "\\" not in field:
        return field
    return field.encode().decode("unicode_escape").encode("latin-1").decode(errors="replace")


def own_cgroups() -> dict[str, str]:
    """This process's cgroup per v1 controller, and its v2 cgroup under the key ""."""
    groups: dict[str, str] = {}
    with open("/proc/self/cgroup") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                groups[controller] = path
    return groups


def relative_path(path: str, mount_root: str) -> str | None:
    """``path`` (from /proc/self/cgroup) inside a mount of the hierarchy rooted at ``mount_root``."""
    if not path.startswith("/"):
        return None
    if mount_root in ("", "/"):
        return path
    if path == mount_root or path.startswith(mount_root.rstrip("/") + "/"):
        return path[len(mount_root) :] or "/"
    return None


def subtree_control(dir_fd: int) -> set[str]:
    """The controllers a v2 group delegates to its children (a fake cgroupfs keeps the "+")."""
    return {name.lstrip("+") for name in read_at(dir_fd, "cgroup.subtree_control").split()}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_members(dir_fd: int, name: str) -> None:
    """SIGKILL every process in a group (v2: ``cgroup.kill`` when the kernel has it)."""
    try:
        write_at(dir_fd, f"{name}/cgroup.kill", "1")
        return
    except OSError:
        pass
    try:
        members = read_at(dir_fd, f"{name}/cgroup.procs").split()
    except OSError:
        return
    for pid in members:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError, ValueError):
            pass


def read_at(dir_fd: int, path: str) -> str:
    """A cgroup file's text, opened relative to a directory descriptor."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(fd)


def write_at(dir_fd: int, path: str, text: str) -> None:
    """Write one value to a cgroup file, opened relative to a directory descriptor."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
