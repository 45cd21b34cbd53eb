"""cgroup files and processes, reached relative to a group's directory descriptor."""

from __future__ import annotations

import os
import signal

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


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
