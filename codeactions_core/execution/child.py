"""The sandboxed process: what a child cloned by the zygote does before running code.

Stdlib only; imported by the zygote as a top-level module. The child starts in
new mount, PID, IPC and UTS namespaces (when the machine allows) as PID 1,
with a copy of the zygote's masked view of the file system; it joins its
cgroup slot, mounts its private /tmp and its /proc, takes exactly its file
descriptors, lowers its limits, drops its privileges, then execs the program
or calls the zygote's preloaded harness.
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import signal

import linux

STDIN, STDOUT, STDERR, JOB, OUTCOME, EXECUTABLE = 0, 1, 2, 3, 4, 5
PARKING_FD = 1000
NAMESPACES = linux.CLONE_NEWNS | linux.CLONE_NEWPID | linux.CLONE_NEWIPC | linux.CLONE_NEWUTS


def namespace_flags(*, network: bool) -> int:
    """The clone flags of a sandboxed child (the zygote is already in its own user
    namespace when not root, so the child needs none of its own)."""
    return NAMESPACES | (0 if network else linux.CLONE_NEWNET)


def inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def build_template_view(hidden: list[str], expose: list[str]) -> None:
    """Once, in the zygote's own mount namespace: the hidden paths masked by empty
    read-only tmpfs, the exposed paths that fall under a mask bound back read-only.
    Every child copies this view; propagation is private, so nothing leaks back."""
    expose = [
        os.path.realpath(path) for path in expose
        if os.path.isdir(path) and any(inside(os.path.realpath(path), mask) for mask in hidden)
    ]
    handles = [os.open(path, os.O_PATH | os.O_DIRECTORY) for path in expose]
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    for path in hidden:
        linux.mount("tmpfs", path, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "size=64k,mode=0755")
    read_only = linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV
    for path, handle in zip(expose, handles):
        os.makedirs(path, exist_ok=True)
        linux.mount(f"/proc/self/fd/{handle}", path, None, linux.MS_BIND | linux.MS_REC)
        linux.mount(None, path, None, read_only)
        os.close(handle)
    for path in hidden:
        linux.mount(None, path, None, read_only)


def exposed_under_tmp(expose: list[str]) -> list[str]:
    """Exposed paths that each run's private /tmp would cover."""
    paths = [os.path.realpath(path) for path in expose if os.path.isdir(path)]
    return [path for path in paths if inside(path, "/tmp")]


def build_run_view(*, scratch_size: int, exposures: list[str]) -> None:
    """Per run, on the template's copy: a private, size-limited /tmp (with the exposed
    paths that lived under /tmp bound back read-only) and this PID namespace's /proc.
    The handles are opened here: a bind mount's source must be in the caller's namespace."""
    handles = [os.open(path, os.O_PATH | os.O_DIRECTORY) for path in exposures]
    linux.mount("tmpfs", "/tmp", "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, f"size={scratch_size},mode=1777")
    read_only = linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV
    for path, handle in zip(exposures, handles):
        os.makedirs(path, exist_ok=True)
        linux.mount(f"/proc/self/fd/{handle}", path, None, linux.MS_BIND | linux.MS_REC)
        linux.mount(None, path, None, read_only)
        os.close(handle)
    linux.mount("proc", "/proc", "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)


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
    parked = {target: fcntl.fcntl(source, fcntl.F_DUPFD, PARKING_FD) for target, source in fds.items()}
    for target, source in parked.items():
        os.dup2(source, target)
    os.closerange(max(fds) + 1, os.sysconf("SC_OPEN_MAX"))


def lower_limits(limits: dict, timeout: float) -> None:
    linux.set_limit(resource.RLIMIT_CORE, 0)
    linux.set_limit(resource.RLIMIT_CPU, int(timeout) + 1)
    for kind, key in ((resource.RLIMIT_AS, "memory"), (resource.RLIMIT_FSIZE, "file_size"),
                      (resource.RLIMIT_NOFILE, "open_files"), (resource.RLIMIT_NPROC, "nproc")):
        if limits.get(key):
            linux.set_limit(kind, int(limits[key]))


def become_sandboxed(zygote, spec: dict, fds: dict[int, int], slot: str, scratch: str) -> None:
    """Everything the child does; never returns."""
    outcome = fds[OUTCOME]  # where a setup failure is reported; fd 4 once installed
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        zygote.control.close()
        # Its own session and process group: signals to "its group" (kill(0, …)) reach
        # nothing but itself, not the zygote's other children (same user, other runs).
        os.setsid()
        if zygote.cgroups:
            zygote.cgroups.join_self(slot, spec.get("limits", {}))
        if zygote.namespaces:
            build_run_view(scratch_size=spec.get("limits", {}).get("scratch_size", 64 << 20),
                           exposures=zygote.tmp_exposures)
        install_fds({STDIN: os.open("/dev/null", os.O_RDWR), **fds})
        outcome = OUTCOME
        if EXECUTABLE in fds:  # exec'd by descriptor, which must not outlive the exec
            os.set_inheritable(EXECUTABLE, False)
        os.chdir(scratch)
        lower_limits(spec.get("limits", {}), float(spec.get("timeout", 60)))
        drop_identity(root=zygote.root, uid=zygote.config.get("uid", 65534), gid=zygote.config.get("gid", 65534))
        linux.die_with_parent(signal.SIGKILL)  # after the uid change, which clears it
        linux.set_no_new_privs()
        env = {"HOME": scratch, "TMPDIR": scratch, **spec.get("env", {})}
        if spec.get("argv"):
            target = EXECUTABLE if EXECUTABLE in fds else spec["argv"][0]
            os.execve(target, spec["argv"], env)
        os.environ.clear()
        os.environ.update(env)
        zygote.harness(JOB, OUTCOME)
        os._exit(0)
    except BaseException as exc:
        try:
            os.write(outcome, json.dumps({"setup_error": f"{type(exc).__name__}: {exc}"}).encode())
        except OSError:
            pass
        os._exit(126)
