"""Network namespaces of threads, and the kernel settings read and written in them.

A namespace change affects the calling thread only: ``on_fresh_thread`` runs
work that moves between namespaces on a thread of its own.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from codeactions_core.execution import linux
from codeactions_core.execution.linux import (
    CLONE_FS,
    CLONE_NEWNET,
    CLONE_NEWNS,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_REC,
    MS_REMOUNT,
    MS_SLAVE,
)

CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21

T = TypeVar("T")


def setns(fd: int) -> None:
    """Move the calling thread into the network namespace ``fd``."""
    linux.setns(fd, CLONE_NEWNET)


def unshare_network() -> None:
    """Move the calling thread into a new, empty network namespace."""
    linux.unshare(CLONE_NEWNET, "unshare(CLONE_NEWNET)")


def thread_namespace() -> int:
    """A descriptor of the calling thread's network namespace."""
    return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def namespace_id(fd: int) -> int:
    """The inode that identifies a namespace."""
    return os.fstat(fd).st_ino


def on_fresh_thread(function: Callable[[], T], name: str = "codeactions-netns") -> T:
    """Call ``function`` on a new thread and return its result (or raise its exception):
    whatever namespace it moves into, the caller's thread stays where it is."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def write_sysctl(name: str, value: str) -> None:
    """Set a ``/proc/sys`` entry (network entries: of the calling thread's namespace)."""
    path = "/proc/sys/" + name.replace(".", "/")
    try:
        with open(path, "w") as handle:
            handle.write(value)
    except OSError as exc:
        if exc.errno != errno.EROFS or getattr(_thread_mounts, "private", False):
            raise
        writable_proc_sys()
        with open(path, "w") as handle:
            handle.write(value)


_thread_mounts = threading.local()


def writable_proc_sys() -> None:
    """Container engines mount ``/proc/sys`` read-only (Docker unless ``systempaths=unconfined``):
    give the calling thread, and only it, a mount namespace where it is writable. The network
    entries it then writes are still those of its own network namespace, as the kernel allows."""
    linux.unshare(CLONE_FS | CLONE_NEWNS, "unshare(CLONE_NEWNS) for a writable /proc/sys")
    _thread_mounts.private = True
    keep = os.statvfs("/proc/sys").f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for target, flags in (("/", MS_REC | MS_SLAVE), ("/proc/sys", MS_REMOUNT | MS_BIND | keep)):
        linux.mount(None, target, None, flags, what=f"remounting {target}")


def read_sysctl(name: str) -> str:
    with open("/proc/sys/" + name.replace(".", "/")) as handle:
        return handle.read().strip()


def effective_capabilities() -> int:
    """The effective capability bits of this process."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0
