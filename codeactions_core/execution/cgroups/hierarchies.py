"""The cgroup hierarchies a placer uses: found and opened once at start-up (the only place that
uses paths), with this process's base group in each; and removed again at exit.

Layout. v1: ``<controller mount>/<own cgroup>/codeactions-<pid>/slot-N`` in each
writable hierarchy of pids, memory and cpu. v2: ``<own cgroup>/codeactions-<pid>/``
holds ``zygote/`` (the zygote moves there: a cgroup whose children have
controllers enabled may hold no process) and the slots; the controllers are
enabled in the ``cgroup.subtree_control`` of the own cgroup and of the base.
When the own cgroup refuses that because it holds processes (a container's
namespace root, a systemd service with ``Delegate=yes``), they are first moved
into a leaf ``codeactions-leaf`` below it (what docker-in-docker does), unless
``cgroup_evacuate`` is false in the configuration. Where the mounted cgroupfs is
read-only (Docker mounts it so in unprivileged containers), a new instance of
its own is mounted with fsopen/fsmount, attached nowhere (that needs
CAP_SYS_ADMIN; in a private cgroup namespace it shows only the container's tree).
Base groups of zygotes that died without cleaning up are removed at start-up.
"""

from __future__ import annotations

import errno
import os

from .files import DIR_FLAGS, pid_alive, read_at, subtree_control, write_at
from .groups import Groups
from .mounts import Mount, cgroup_mounts, open_own_group, own_cgroups

WANTED = ("pids", "memory", "cpu")  # also the order a child joins them (v1)
ZYGOTE_LEAF = "zygote"
EVACUATED_LEAF = "codeactions-leaf"
BASE_PREFIX = "codeactions-"
PROBE = "knob-probe"


class Hierarchy:
    """One mounted hierarchy the placer uses: its controllers, the own cgroup's and the base's
    descriptors, and the knobs a slot has in it."""

    def __init__(
        self, controllers: frozenset[str], parent_fd: int, base_fd: int, knobs: set[str]
    ) -> None:
        self.controllers = controllers
        self.parent_fd = parent_fd
        self.base_fd = base_fd
        self.knobs = knobs


class HierarchySetup:
    """Finds the hierarchies to use (see the module docstring), opens them and makes this
    process's base group in each; ``problem`` says why none (or not every one) could be used.

    Configuration keys (all optional): ``cgroup_version`` (1 or 2: only try that one),
    ``cgroup_controllers`` (default pids, memory, cpu), ``cgroup_evacuate`` (v2, default
    true), ``cgroup_fresh_mount`` (always reach the hierarchies through a new mount of our
    own, as is done anyway when the mounted one is read-only), and for tests
    ``cgroup_v2_mount`` / ``cgroup_path`` (a v2 hierarchy and the own cgroup in it,
    instead of those of /proc/self).
    """

    def __init__(self, config: dict, groups: Groups) -> None:
        self.version: int | None = None
        self.problem = ""
        self.hierarchies: list[Hierarchy] = []
        """The hierarchies in use, in the order a child joins them."""
        self._groups = groups
        self._base_name = f"{BASE_PREFIX}{os.getpid()}"
        self._zygote_moved = False
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
        if not self.hierarchies and forced in (None, 2) and v2_mount and "" in own:
            self._open_v2(
                v2_mount, own[""], wanted, fresh, bool(config.get("cgroup_evacuate", True))
            )
        if not self.hierarchies and not self.problem:
            self.problem = "no cgroup hierarchy with a writable pids, memory or cpu controller"

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
            self.hierarchies.append(Hierarchy(mine, parent_fd, base_fd, knobs))
        if self.hierarchies:
            self.version = 1
            order = {name: index for index, name in enumerate(WANTED)}
            self.hierarchies.sort(key=lambda h: min(order.get(name, 99) for name in h.controllers))

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
            self._groups.make(base_fd, ZYGOTE_LEAF)
            write_at(base_fd, f"{ZYGOTE_LEAF}/cgroup.procs", str(os.getpid()))
            self._zygote_moved = True
            enabled = self._enable(base_fd, enabled, evacuate=False)
            if not enabled:
                raise OSError(errno.EBUSY, "could not enable the controllers for the slots")
            # the knobs a slot has (the base's are its parent's choice)
            self._groups.make(base_fd, PROBE)
            try:
                probe_fd = os.open(PROBE, DIR_FLAGS, dir_fd=base_fd)
                try:
                    knobs = set(os.listdir(probe_fd))
                finally:
                    os.close(probe_fd)
            finally:
                self._groups.remove(base_fd, PROBE)
        except OSError as exc:
            self._note(f"cgroup v2: {exc}")
            if base_fd >= 0:
                self._leave_base(parent_fd)
                try:
                    self._groups.remove(base_fd, ZYGOTE_LEAF)
                    self._groups.remove(parent_fd, self._base_name)
                except OSError:
                    pass
                os.close(base_fd)
            if parent_fd >= 0:
                os.close(parent_fd)
            return
        self.version = 2
        self.hierarchies.append(Hierarchy(frozenset(enabled), parent_fd, base_fd, knobs))

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
        """v2: move every process of a group into its leaf ``codeactions-leaf`` (no internal
        processes)."""
        self._groups.make(dir_fd, EVACUATED_LEAF)
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
        self._groups.make(parent_fd, self._base_name)
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
                self._groups.kill_and_remove(
                    fd, [entry.name for entry in os.scandir(fd) if entry.is_dir()]
                )
                if name != self._base_name:
                    self._groups.remove(parent_fd, name)
            except OSError:
                pass  # not ours to clean (another user's), or busy
            finally:
                os.close(fd)

    # -- the interface the zygote and the child use ---------------------------------------

    def remove(self) -> None:
        """At exit: kill what is left in the slots and remove them, the zygote's leaf and the
        base groups."""
        hierarchies, self.hierarchies = self.hierarchies, []
        for hierarchy in hierarchies:
            try:
                slots = [
                    entry.name
                    for entry in os.scandir(hierarchy.base_fd)
                    if entry.is_dir() and entry.name != ZYGOTE_LEAF
                ]
                self._groups.kill_and_remove(hierarchy.base_fd, slots)
                if self._zygote_moved:
                    self._leave_base(hierarchy.parent_fd)
                    self._groups.remove(hierarchy.base_fd, ZYGOTE_LEAF)
                self._groups.remove(hierarchy.parent_fd, self._base_name)
            except OSError:
                pass
            finally:
                os.close(hierarchy.base_fd)
                os.close(hierarchy.parent_fd)

    def _leave_base(self, parent_fd: int) -> None:
        """v2: move the zygote out of its leaf (back to its own group, or the evacuated leaf)."""
        for name in (".", EVACUATED_LEAF):
            try:
                write_at(parent_fd, f"{name}/cgroup.procs", str(os.getpid()))
                return
            except OSError:
                continue
