"""One run's supervisor (C1) and sandboxed process (C2); see ``zygote.py``.

Stdlib only; imported by the zygote as a top-level module.
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import shutil
import signal
import socket
import tempfile

import linux
import wire

STDOUT, STDERR, JOB, OUTCOME, EXECUTABLE = 1, 2, 3, 4, 5
PARKING_FD = 1000
NAMESPACES = linux.CLONE_NEWNS | linux.CLONE_NEWPID | linux.CLONE_NEWIPC | linux.CLONE_NEWUTS


def inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def enter_namespaces(zygote, *, network: bool) -> None:
    flags = NAMESPACES | (0 if network else linux.CLONE_NEWNET)
    if zygote.root:
        linux.unshare(flags)
    else:
        uid, gid = os.geteuid(), os.getegid()
        linux.unshare(flags | linux.CLONE_NEWUSER)
        linux.map_to_root(uid, gid)


def build_view(zygote, *, scratch_size: int) -> None:
    """The run's file system: private scratch on /tmp, hidden paths masked."""
    covered = zygote.hidden + ["/tmp"]
    expose = [
        os.path.realpath(path) for path in zygote.config.get("expose", [])
        if os.path.isdir(path) and any(inside(os.path.realpath(path), mask) for mask in covered)
    ]
    handles = [os.open(path, os.O_PATH | os.O_DIRECTORY) for path in expose]
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    masks = list(zygote.hidden)
    for path in masks:
        linux.mount("tmpfs", path, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "size=64k,mode=0755")
    linux.mount("tmpfs", "/tmp", "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, f"size={scratch_size},mode=1777")
    for path, handle in zip(expose, handles):
        os.makedirs(path, exist_ok=True)
        linux.mount(f"/proc/self/fd/{handle}", path, None, linux.MS_BIND | linux.MS_REC)
        linux.mount(None, path, None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV)
        os.close(handle)
    for path in masks:
        linux.mount(None, path, None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV)


def drop_identity(zygote) -> None:
    if zygote.root:
        uid, gid = zygote.config.get("uid", 65534), zygote.config.get("gid", 65534)
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    elif zygote.namespaces:
        linux.drop_capabilities()


class Supervisor:
    """C1: prepares the sandbox and forks C2, then hands C2's pipes to the server,
    which talks to C2 directly. C1 waits to be told the run is over (or for the
    server to go away), then kills whatever is left of C2 and reports its status."""

    def __init__(self, zygote, spec: dict, run_socket: socket.socket, slot: str) -> None:
        self.zygote = zygote
        self.slot = slot
        self.spec = spec
        self.limits = spec.get("limits", {})
        self.socket = run_socket
        self.scratch = "/tmp"

    def run(self) -> None:
        try:
            child, pipes = self.prepare()
        except Exception as exc:
            self.send({"error": f"sandbox setup failed: {exc}"})
            return
        self.send({"ready": True, "child": child}, fds=pipes)
        for fd in pipes:
            os.close(fd)
        try:
            finished = wire.receive(self.socket)
        except (wire.WireError, OSError):
            finished = None
        status = end(child)
        if finished is not None:
            self.send(status)
        if not self.zygote.namespaces:
            kill_group(child)
            remove_tree(self.scratch)

    def send(self, message: dict, fds: tuple[int, ...] = ()) -> None:
        try:
            wire.send(self.socket, message, fds=fds)
        except OSError:
            pass

    def prepare(self) -> tuple[int, tuple[int, int, int, int]]:
        """C2 and the descriptors the server needs: job (write), outcome (read), stdout, stderr."""
        zygote = self.zygote
        if zygote.cgroups:
            zygote.cgroups.join(self.slot, self.limits)
        executable = None
        if self.spec.get("executable"):
            executable = os.open(self.spec["executable"], os.O_RDONLY | os.O_CLOEXEC)
        if zygote.namespaces:
            enter_namespaces(zygote, network=self.spec.get("network", True))
            build_view(zygote, scratch_size=self.limits.get("scratch_size", 64 << 20))
        else:
            self.scratch = make_scratch_dir(zygote)
        job_read, job_write = os.pipe()
        outcome_read, outcome_write = os.pipe()
        stdout_file = os.memfd_create("stdout")
        stderr_file = os.memfd_create("stderr")
        child = os.fork()
        if child == 0:
            fds = {0: os.open("/dev/null", os.O_RDWR), STDOUT: stdout_file, STDERR: stderr_file,
                   JOB: job_read, OUTCOME: outcome_write}
            if executable is not None:
                fds[EXECUTABLE] = executable
            self.become_sandboxed(fds)
        for fd in (job_read, outcome_write) + ((executable,) if executable is not None else ()):
            os.close(fd)
        return child, (job_write, outcome_read, stdout_file, stderr_file)

    def become_sandboxed(self, fds: dict[int, int]) -> None:
        """C2: never returns."""
        try:
            os.setsid()
            if self.zygote.namespaces:
                linux.mount("proc", "/proc", "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
            install_fds(fds)
            if EXECUTABLE in fds:  # exec'd by descriptor, which must not outlive the exec
                os.set_inheritable(EXECUTABLE, False)
            os.chdir(self.scratch)
            self.lower_limits()
            drop_identity(self.zygote)
            linux.die_with_parent(signal.SIGKILL)
            linux.set_no_new_privs()
            env = dict(self.spec.get("env", {}))
            env.setdefault("HOME", self.scratch)
            env.setdefault("TMPDIR", self.scratch)
            if self.spec.get("argv"):
                target = EXECUTABLE if EXECUTABLE in fds else self.spec["argv"][0]
                os.execve(target, self.spec["argv"], env)
            os.environ.clear()
            os.environ.update(env)
            self.zygote.harness(JOB, OUTCOME)
            os._exit(0)
        except BaseException as exc:
            try:
                os.write(OUTCOME, json.dumps({"setup_error": f"{type(exc).__name__}: {exc}"}).encode())
            except OSError:
                pass
            os._exit(126)

    def lower_limits(self) -> None:
        limits = self.limits
        timeout = float(self.spec.get("timeout", 60))
        linux.set_limit(resource.RLIMIT_CORE, 0)
        linux.set_limit(resource.RLIMIT_CPU, int(timeout) + 1)
        for kind, key in ((resource.RLIMIT_AS, "memory"), (resource.RLIMIT_FSIZE, "file_size"),
                          (resource.RLIMIT_NOFILE, "open_files"), (resource.RLIMIT_NPROC, "nproc")):
            if limits.get(key):
                linux.set_limit(kind, int(limits[key]))


def end(child: int) -> dict:
    """Kill C2 if it still runs (taking its PID namespace with it) and reap it."""
    pid, status = os.waitpid(child, os.WNOHANG)
    killed = pid == 0
    if killed:
        kill(child)
        _, status = os.waitpid(child, 0)
    return {
        "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "killed": killed,
    }


def install_fds(fds: dict[int, int]) -> None:
    """Make exactly ``fds`` (target -> source) the open descriptors of this process."""
    parked = {target: fcntl.fcntl(source, fcntl.F_DUPFD, PARKING_FD) for target, source in fds.items()}
    for target, source in parked.items():
        os.dup2(source, target)
    os.closerange(max(fds) + 1, os.sysconf("SC_OPEN_MAX"))


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def make_scratch_dir(zygote) -> str:
    """Without a mount namespace: a fresh directory under the configured scratch root."""
    root = zygote.config.get("scratch_root", "/tmp")
    path = tempfile.mkdtemp(prefix="run-", dir=root)
    if zygote.root:
        os.chown(path, zygote.config.get("uid", 65534), zygote.config.get("gid", 65534))
    return path


def remove_tree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
