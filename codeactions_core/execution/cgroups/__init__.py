"""Per-run cgroups of the sandbox, on cgroup v1 or v2.

Stdlib only: the zygote (``python -I -S``) imports it as the top-level package ``cgroups``
(hence the relative imports inside).

The placer finds and opens its cgroup directories once, at start-up
(``hierarchies``), while the zygote still sees the host's ``/sys/fs/cgroup``.
Everything afterwards — creating, configuring, emptying and removing slots, and a
child joining its slot (``placer``) — goes through those directory descriptors
(``*at`` calls with relative paths, ``files``), never through a path under
``/sys``: the zygote pivots into a root without it, and its children are clones
of it that inherit the descriptors (close-on-exec, and closed by the child's
``install_fds`` anyway).

Slots: a released slot is reused once it is empty (what a finished run left
running is killed first) and its memory charge is back under LEFTOVER_BYTES.

Modules: ``mounts`` (the mounted hierarchies, this process's cgroups, mounts of
our own), ``files`` (cgroup files and members through descriptors), ``groups``
(making and removing groups), ``knobs`` (a run's limits as knob values),
``hierarchies`` (start-up and exit), ``placer`` (the slots).
"""

from .files import kill_members, pid_alive, read_at, subtree_control, write_at
from .groups import Groups
from .hierarchies import Hierarchy, HierarchySetup
from .knobs import knob_values
from .mounts import Mount, cgroup_mounts, fresh_mount, open_own_group, own_cgroups, relative_path
from .placer import LEFTOVER_BYTES, CgroupPlacer

__all__ = [
    "LEFTOVER_BYTES",
    "CgroupPlacer",
    "Groups",
    "Hierarchy",
    "HierarchySetup",
    "Mount",
    "cgroup_mounts",
    "fresh_mount",
    "kill_members",
    "knob_values",
    "open_own_group",
    "own_cgroups",
    "pid_alive",
    "read_at",
    "relative_path",
    "subtree_control",
    "write_at",
]
