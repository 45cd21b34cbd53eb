"""The allowlist root every sandboxed process starts in (stdlib only; zygote side).

Built once by the zygote, in its own mount namespace, then entered with
``pivot_root``: an empty tmpfs holding, read-only, only the paths the runtime
declared (interpreter, harness, libraries, a few ``/etc`` files), a minimal
``/dev`` and empty mount points for the per-run ``/tmp``, ``/dev/shm`` and
``/proc``. Nothing else of the host is reachable afterwards, from the zygote
or from any child: no ``/sys``, ``/run``, ``/var``, ``/home``, no sockets, no
cgroupfs, none of the server's own files. Modelled on bubblewrap's
``--ro-bind`` lists on a tmpfs root and isolate's minimal box.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import linux

STAGING = "/tmp"
"""Where the new root's tmpfs is mounted before the pivot: it exists everywhere, and
covering it in the zygote's own mount namespace hides nothing from anyone else."""
DEVICES = ("null", "zero", "full", "random", "urandom")
DEVICE_LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
    "ptmx": "/dev/null",
}
MOUNT_POINTS = ("/tmp", "/proc", "/dev/shm")
READ_ONLY = linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV
WRITABLE = linux.MS_REMOUNT | linux.MS_BIND | linux.MS_NOSUID | linux.MS_NODEV


@dataclass
class Placement:
    """One host path to bind into the new root."""

    path: str
    """Where it appears in the new root: its real path (no symbolic link in it), or the
    place the runtime asked for."""
    directory: bool
    writable: bool
    source: str = ""
    """The real host path (default: ``path``)."""
    handle: int = -1
    """An O_PATH descriptor of the source, opened while the host's tree is visible."""


def inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def resolve(path: str, links: dict[str, str]) -> str:
    """The real path of ``path``, noting every symbolic link met on the way (its path in
    the new root and its target) so that the same names work inside."""
    parts = [part for part in os.path.abspath(path).split("/") if part]
    current = "/"
    hops = 0
    while parts:
        part = parts.pop(0)
        candidate = os.path.join(current, part)
        if os.path.islink(candidate):
            hops += 1
            if hops > 40:
                raise OSError(f"too many symbolic links in {path}")
            target = os.readlink(candidate)
            links.setdefault(candidate, target)
            absolute = target if os.path.isabs(target) else os.path.join(current, target)
            parts = [p for p in os.path.normpath(absolute).split("/") if p] + parts
            current = "/"
            continue
        current = candidate
    return current


def plan(binds: list, writable: list) -> tuple[list[Placement], dict[str, str]]:
    """What to bind and which links to recreate. An entry is a host path (bound at the same
    path) or ``[host path, path inside]``. Paths that do not exist are skipped, and a path
    inside another bound one of the same kind is covered already."""
    links: dict[str, str] = {}
    wanted: dict[str, tuple[str, bool]] = {}  # path inside -> (real source, writable)
    for entry, rw in [(p, False) for p in binds] + [(p, True) for p in writable]:
        source, target = (entry, None) if isinstance(entry, str) else entry
        if not os.path.lexists(source):
            continue
        real = resolve(source, links) if target is None else os.path.realpath(source)
        if os.path.exists(real):
            inner = target or real
            wanted[inner] = (real, wanted.get(inner, ("", False))[1] or rw)
    placements: list[Placement] = []
    for inner in sorted(wanted):
        real, rw = wanted[inner]
        if any(
            inside(inner, other.path)
            and other.writable == rw
            and real == other.source + inner[len(other.path) :]
            for other in placements
        ):
            continue
        placements.append(Placement(inner, os.path.isdir(real), rw, source=real))
    for placement in placements:
        flags = os.O_PATH | os.O_CLOEXEC | (os.O_DIRECTORY if placement.directory else 0)
        placement.handle = os.open(placement.source, flags)
    return placements, links


def build(
    binds: list[str], writable: list[str], masks: list[str], etc: dict[str, str], host_proc: bool
) -> None:
    """Build the root on a tmpfs at STAGING and pivot into it. The caller is alone in a
    mount namespace of its own (root, or root of a user namespace)."""
    placements, links = plan(binds, writable)
    devices = {name: os.open(f"/dev/{name}", os.O_PATH | os.O_CLOEXEC) for name in DEVICES}
    proc = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) if host_proc else -1
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    linux.mount("tmpfs", STAGING, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "size=4m,mode=0755")
    root = STAGING
    for placement in placements:
        target = root + placement.path
        _parents(root, os.path.dirname(placement.path), links)
        if placement.directory:
            os.makedirs(target, exist_ok=True)
        elif not os.path.exists(target):
            open(target, "w").close()
        linux.mount(f"/proc/self/fd/{placement.handle}", target, None, linux.MS_BIND | linux.MS_REC)
        linux.mount(None, target, None, WRITABLE if placement.writable else READ_ONLY)
        os.close(placement.handle)
    for link, target in sorted(links.items()):
        _parents(root, os.path.dirname(link), links)
        if not os.path.lexists(root + link):
            os.symlink(target, root + link)
    for mask in masks:
        if os.path.isdir(root + mask) and any(inside(mask, p.path) for p in placements):
            linux.mount(
                "tmpfs",
                root + mask,
                "tmpfs",
                linux.MS_NOSUID | linux.MS_NODEV | linux.MS_RDONLY,
                "size=4k,mode=0755",
            )
    os.makedirs(root + "/etc", exist_ok=True)
    for name, text in etc.items():
        path = f"{root}/etc/{name}"
        if not os.path.lexists(path):
            with open(path, "w") as handle:
                handle.write(text)
    _build_dev(root, devices)
    for point in MOUNT_POINTS:
        os.makedirs(root + point, exist_ok=True)
    os.chmod(root + "/tmp", 0o1777)
    if proc >= 0:  # a fully visible proc, so that a user namespace may mount its own over it
        linux.mount(f"/proc/self/fd/{proc}", root + "/proc", None, linux.MS_BIND | linux.MS_REC)
        os.close(proc)
    linux.mount(
        None, root, None, linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV
    )
    os.chdir(root)
    linux.pivot_root(".", ".")
    linux.umount(".", linux.MNT_DETACH)
    os.chdir("/")


def _parents(root: str, folder: str, links: dict[str, str]) -> None:
    """Create ``folder``'s directories in the new root, as links where the host has links."""
    current = ""
    for part in [p for p in folder.split("/") if p]:
        current += "/" + part
        if current in links:
            if not os.path.lexists(root + current):
                os.symlink(links[current], root + current)
            continue
        if not os.path.isdir(root + current):
            os.mkdir(root + current, 0o755)


def _build_dev(root: str, devices: dict[str, int]) -> None:
    """A minimal /dev: the harmless character devices, bound from the host, and links."""
    os.makedirs(root + "/dev", exist_ok=True)
    for name, handle in devices.items():
        target = f"{root}/dev/{name}"
        open(target, "w").close()
        linux.mount(f"/proc/self/fd/{handle}", target, None, linux.MS_BIND)
        linux.mount(
            None, target, None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_NOSUID | linux.MS_NOEXEC
        )
        os.close(handle)
    for name, target in DEVICE_LINKS.items():
        os.symlink(target, f"{root}/dev/{name}")


def mount_run_filesystems(*, scratch_size: int, shm_size: int, proc: bool = True) -> None:
    """Per run, in the child's own mount namespace: a private, size-limited /tmp and
    /dev/shm (both counted in the run's memory cgroup) and this PID namespace's /proc."""
    flags = linux.MS_NOSUID | linux.MS_NODEV
    linux.mount("tmpfs", "/tmp", "tmpfs", flags, f"size={scratch_size},mode=1777")
    linux.mount("tmpfs", "/dev/shm", "tmpfs", flags | linux.MS_NOEXEC, f"size={shm_size},mode=1777")
    if proc:
        linux.mount("proc", "/proc", "proc", flags | linux.MS_NOEXEC)
    else:  # whatever lies under /proc (the host's, bound for user namespaces) stays covered
        linux.mount(
            "tmpfs",
            "/proc",
            "tmpfs",
            flags | linux.MS_NOEXEC | linux.MS_RDONLY,
            "size=4k,mode=0555",
        )


def etc_files(
    *,
    uid_base: int,
    uid_count: int,
    fallback_uid: int,
    fallback_gid: int,
    hostname: str,
    resolv_conf: str,
) -> dict[str, str]:
    """Stub /etc files: users for the sandbox's uids, hosts, resolver, name service order."""
    users = [
        "root:x:0:0:root:/nonexistent:/usr/sbin/nologin",
        f"sandbox:x:{fallback_uid}:{fallback_gid}:sandbox:/tmp:/usr/sbin/nologin",
    ]
    groups = ["root:x:0:", f"sandbox:x:{fallback_gid}:"]
    for index in range(uid_count):
        uid = uid_base + index
        if uid != fallback_uid:
            users.append(f"sandbox{index}:x:{uid}:{uid}:sandbox:/tmp:/usr/sbin/nologin")
            groups.append(f"sandbox{index}:x:{uid}:")
    return {
        "passwd": "\n".join(users) + "\n",
        "group": "\n".join(groups) + "\n",
        "hosts": f"127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost\n",
        "hostname": hostname + "\n",
        "resolv.conf": resolv_conf,
        "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
    }
