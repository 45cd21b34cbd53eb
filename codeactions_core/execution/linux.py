"""Linux primitives the sandbox needs and Python 3.11 lacks (ctypes, stdlib only).

Imported by the zygote as a top-level module, so it must not import from the
``codeactions_core`` package.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import platform
import resource
import signal
import socket
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_libc_holding_gil = ctypes.PyDLL(None, use_errno=True)  # for clone: the GIL stays with us
_SYS_CLONE = {"x86_64": 56, "aarch64": 220}.get(platform.machine())

CLONE_FS = 0x00000200
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_STRICTATIME = 1 << 24

MNT_DETACH = 0x2
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(platform.machine())
_SYS_SETNS = {"x86_64": 308, "aarch64": 268}.get(platform.machine())
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38

_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def clone_process(flags: int) -> int:
    """fork(), with new namespaces for the child (``CLONE_NEW*`` flags).

    Unlike unshare + fork, this can be done again and again by one process.
    CPython's public fork hooks keep the interpreter consistent on both sides;
    the caller must be single-threaded, as for any fork.
    """
    if _SYS_CLONE is None:
        raise OSError(0, f"clone is not wired up for {platform.machine()}")
    ctypes.pythonapi.PyOS_BeforeFork()
    # x86_64: clone(flags, stack, parent_tid, child_tid, tls); aarch64 swaps the last two.
    pid = _libc_holding_gil.syscall(
        ctypes.c_long(_SYS_CLONE), ctypes.c_ulong(flags | signal.SIGCHLD), None, None, None, None
    )
    if pid == 0:
        ctypes.pythonapi.PyOS_AfterFork_Child()
        return 0
    errno = ctypes.get_errno()
    ctypes.pythonapi.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(errno, f"clone: {os.strerror(errno)}")
    return pid


def unshare(flags: int, what: str = "unshare") -> None:
    """Move the calling thread into new namespaces; ``what`` names the step in the error."""
    _check(_libc.unshare(ctypes.c_int(flags)), what)


def mount(
    source: str | None,
    target: str,
    fstype: str | None,
    flags: int,
    data: str | None = None,
    *,
    what: str | None = None,
) -> None:
    """mount(2); ``what`` names the step in the error (default ``mount TARGET``)."""
    encode = lambda text: text.encode() if text is not None else None
    _check(
        _libc.mount(
            encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags), encode(data)
        ),
        what or f"mount {target}",
    )


def umount(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(target.encode(), ctypes.c_int(flags)), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    if _SYS_PIVOT_ROOT is None:
        raise OSError(0, f"pivot_root is not wired up for {platform.machine()}")
    result = _libc.syscall(ctypes.c_long(_SYS_PIVOT_ROOT), new_root.encode(), put_old.encode())
    _check(0 if result == 0 else -1, "pivot_root")


def setns(fd: int, nstype: int) -> None:
    """Join the namespace ``fd`` refers to (e.g. a prepared network namespace)."""
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def sethostname(name: str) -> None:
    data = name.encode()
    _check(_libc.sethostname(data, ctypes.c_size_t(len(data))), "sethostname")


def loopback_up() -> None:
    """Bring ``lo`` up in this (new, empty) network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def prctl(option: int, argument: int) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(argument), 0, 0, 0), f"prctl({option})")


def set_no_new_privs() -> None:
    """execve can never grant privileges again (setuid binaries, file capabilities)."""
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def die_with_parent(signal_number: int) -> None:
    prctl(PR_SET_PDEATHSIG, signal_number)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def drop_capabilities() -> None:
    """Clear the bounding set and every capability of this process."""
    with open("/proc/sys/kernel/cap_last_cap") as handle:
        last = int(handle.read())
    for capability in range(last + 1):
        _libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0)
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def write_text(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def map_to_root(outside_uid: int, outside_gid: int) -> None:
    """After unshare(CLONE_NEWUSER): be root inside, ``outside_uid`` outside."""
    write_text("/proc/self/setgroups", "deny")
    write_text("/proc/self/uid_map", f"0 {outside_uid} 1")
    write_text("/proc/self/gid_map", f"0 {outside_gid} 1")


def set_limit(kind: int, value: int) -> None:
    """Lower a resource limit (never raise the hard limit above what it is)."""
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value if hard == resource.RLIM_INFINITY else min(value, hard)))
