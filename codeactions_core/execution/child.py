"""The sandboxed process: what a child cloned by the zygote does before running code.

Stdlib only; imported by the zygote as a top-level module. The child starts in
new mount, PID, IPC and UTS (and, unless the network mode is ``host``, network)
namespaces as PID 1, in a copy of the zygote's allowlist root (``rootfs.py``);
it joins its cgroup slot and its prepared network namespace, mounts its private
/tmp, /dev/shm and /proc, takes exactly its file descriptors, lowers its limits,
becomes its slot's own uid, installs the seccomp filter, then execs the program
or calls the zygote's preloaded harness.
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import signal

import linux
import rootfs

STDIN, STDOUT, STDERR, JOB, OUTCOME, EXECUTABLE = 0, 1, 2, 3, 4, 5
PARKING_FD = 1000
NAMESPACES = linux.CLONE_NEWNS | linux.CLONE_NEWPID | linux.CLONE_NEWIPC | linux.CLONE_NEWUTS


def namespace_flags(*, new_network: bool) -> int:
    """The clone flags of a sandboxed child (the zygote is already in its own user
    namespace when not root, so the child needs none of its own). A child that joins a
    prepared network namespace gets it with setns, not a new one."""
    return NAMESPACES | (linux.CLONE_NEWNET if new_network else 0)


def drop_identity(*, root: bool, uid: int, gid: int) -> None:
    """An unprivileged user (from root), or no capabilities left (inside a user namespace)."""
    if root:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    else:
        linux.drop_capabilities()


def install_fds(fds: dict[int, int]) -> None:
    """Make exactly ``fds`` (target -> source) the open descriptors of this process."""
    parked = {
        target: fcntl.fcntl(source, fcntl.F_DUPFD, PARKING_FD) for target, source in fds.items()
    }
    for target, source in parked.items():
        os.dup2(source, target)
    os.closerange(max(fds) + 1, os.sysconf("SC_OPEN_MAX"))


def lower_limits(limits: dict, timeout: float) -> None:
    linux.set_limit(resource.RLIMIT_CORE, 0)
    linux.set_limit(resource.RLIMIT_CPU, int(timeout) + 1)
    for kind, key in (
        (resource.RLIMIT_AS, "memory"),
        (resource.RLIMIT_FSIZE, "file_size"),
        (resource.RLIMIT_NOFILE, "open_files"),
        (resource.RLIMIT_NPROC, "nproc"),
    ):
        if limits.get(key):
            linux.set_limit(kind, int(limits[key]))


def become_sandboxed(zygote, spec: dict, fds: dict[int, int], slot, netns: int | None) -> None:
    """Everything the child does; never returns. ``slot`` holds its cgroup slot, uid and
    scratch directory; ``netns`` is a prepared network namespace to join (egress mode)."""
    outcome = fds[OUTCOME]  # where a setup failure is reported; fd 4 once installed
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        zygote.control.close()
        # Its own session and process group: signals to "its group" (kill(0, …)) reach
        # nothing but itself, not the zygote's other children (same user, other runs).
        os.setsid()
        limits = spec.get("limits", {})
        if zygote.cgroups:
            zygote.cgroups.join_self(slot.cgroup, limits)
        if netns is not None:
            linux.setns(netns, linux.CLONE_NEWNET)
            os.close(netns)
        elif spec.get("network") == "none" and zygote.namespaces:
            linux.loopback_up()
        if zygote.namespaces:
            scratch_size = int(limits.get("scratch_size", 64 << 20))
            rootfs.mount_run_filesystems(
                scratch_size=scratch_size, shm_size=scratch_size, proc=zygote.run_proc
            )
        install_fds({STDIN: os.open("/dev/null", os.O_RDWR), **fds})
        outcome = OUTCOME
        if EXECUTABLE in fds:  # exec'd by descriptor, which must not outlive the exec
            os.set_inheritable(EXECUTABLE, False)
        cwd = spec.get("cwd") or slot.scratch
        os.chdir(cwd)
        lower_limits(limits, float(spec.get("timeout", 60)))
        drop_identity(root=zygote.root, uid=slot.uid, gid=slot.uid if slot.own_uid else zygote.gid)
        linux.die_with_parent(signal.SIGKILL)  # after the uid change, which clears it
        linux.set_no_new_privs()
        env = {"HOME": slot.scratch, "TMPDIR": slot.scratch, **spec.get("env", {})}
        if zygote.seccomp_program:
            zygote.install_seccomp(zygote.seccomp_program)
        if spec.get("argv"):
            target = EXECUTABLE if EXECUTABLE in fds else spec["argv"][0]
            os.execve(target, spec["argv"], env)
        os.environ.clear()
        os.environ.update(env)
        zygote.harness(JOB, OUTCOME)
        os._exit(0)
    except BaseException as exc:  # noqa: BLE001 - whatever it is, the server must hear of it
        try:
            os.write(outcome, json.dumps({"setup_error": f"{type(exc).__name__}: {exc}"}).encode())
        except OSError:
            pass
        os._exit(126)
