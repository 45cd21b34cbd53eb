"""The mounted cgroup hierarchies, this process's place in them, and mounts of our own."""

from __future__ import annotations

import ctypes
import errno
import os

from .files import DIR_FLAGS

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
    """``path`` (from /proc/self/cgroup) inside a mount of the hierarchy rooted at
    ``mount_root``."""
    if not path.startswith("/"):
        return None
    if mount_root in ("", "/"):
        return path
    if path == mount_root or path.startswith(mount_root.rstrip("/") + "/"):
        return path[len(mount_root) :] or "/"
    return None
