"""The sandbox zygote: a small, clean process that clones one sandboxed process per run.

Started by the server as ``python -I -S zygote.py CONFIG`` with an empty
environment and no inherited file descriptors but its control socket. It may
preload a language harness (the Python runtime's), so that a run costs a
clone, not an interpreter start. Stdlib only; its sibling modules (``linux``,
``wire``, ``child``, ``cgroups``) are imported as top-level modules.

For every ``spawn`` request it:

1. picks a cgroup slot and sets its limits (when cgroups are writable here);
2. creates the child's job and outcome pipes and its stdout/stderr memory files
   (the program to exec, if any, arrives from the server as a descriptor);
3. clones the child into new mount, PID, IPC and UTS (and, with the network
   off, network) namespaces; the child is PID 1 there and sets itself up
   (``child.py``): cgroup, private /tmp and /proc, descriptors, limits, an
   unprivileged identity;
4. hands the server the pipes, the output files and a pidfd of the child. The
   server writes the job, reads the outcome, and kills the child at its
   deadline: being PID 1, it takes every process it started with it.

At start-up the zygote moves into a mount namespace of its own (and a user
namespace when not root) and builds there, once, the view every child copies:
the server's working, data and home directories masked by empty read-only
mounts, with only what the runtime needs bound back. The zygote reaps its children, remembers how they ended (the server asks
when a run ended without an outcome), and recycles their cgroup slots. Each
protection is used only when the probe at start-up shows it works here; the
server shows which in its log and ``/health``.
"""

from __future__ import annotations

import collections
import errno
import gc
import importlib.util
import json
import os
import shutil
import signal
import socket
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves it out

import child  # noqa: E402
import linux  # noqa: E402
import wire  # noqa: E402
from cgroups import CgroupPlacer  # noqa: E402

sys.path.pop(0)  # user code imports nothing from here

STATUSES_KEPT = 4096


class Zygote:
    """The serving loop, and what it learnt at start-up about this machine."""

    def __init__(self, config: dict) -> None:
        self.config = config
        self.control = socket.socket(fileno=config["control_fd"])
        self.root = os.geteuid() == 0
        self.outside_uid, self.outside_gid = os.geteuid(), os.getegid()
        self.harness = load_harness(config.get("preload"))
        self.hidden = hidden_paths(config.get("hide", []), config.get("expose", []))
        self.tmp_exposures: list[str] = []
        self.cgroups = CgroupPlacer(config) if config.get("want_cgroups", True) else None
        if self.cgroups is not None and not self.cgroups.controllers:
            self.cgroups = None
        self.namespaces = config.get("want_namespaces", True) and self.enter_template() and self.probe_namespaces()
        self.children: dict[int, tuple[str, str | None]] = {}  # pid -> (cgroup slot, scratch dir)
        self.statuses: collections.OrderedDict[int, int] = collections.OrderedDict()
        self.leftovers: list[tuple[int, str | None]] = []  # fallback mode: groups to kill, dirs to remove

    def protections(self) -> dict:
        userns = self.namespaces and not self.root
        return {
            "namespaces": ["mount", "pid", "ipc", "uts"] + (["user"] if userns else []) if self.namespaces else [],
            "network_isolation": self.namespaces,
            "filesystem_view": self.namespaces,
            "unprivileged_user": self.root,
            "capabilities_dropped": self.root or userns,
            "cgroups": sorted(self.cgroups.controllers) if self.cgroups else [],
            "rlimits": ["as", "cpu", "fsize", "nofile", "nproc", "core"],
            "no_new_privs": True,
            "clean_environment": True,
        }

    def enter_template(self) -> bool:
        """Move into a mount namespace of our own (and a user namespace when not root)
        and build there, once, the masked view every child copies."""
        try:
            if self.root:
                linux.unshare(linux.CLONE_NEWNS)
            else:
                linux.unshare(linux.CLONE_NEWUSER | linux.CLONE_NEWNS)
                linux.map_to_root(self.outside_uid, self.outside_gid)
            child.build_template_view(self.hidden, self.config.get("expose", []))
            self.tmp_exposures = child.exposed_under_tmp(self.config.get("expose", []))
        except OSError as exc:
            print(f"zygote: namespaces unavailable: {exc}", file=sys.stderr)
            return False
        return True

    def probe_namespaces(self) -> bool:
        """Try a child's whole namespace setup once, in a throwaway child."""
        read_end, write_end = os.pipe()
        try:
            pid = linux.clone_process(child.namespace_flags(network=True))
        except OSError as exc:
            print(f"zygote: namespaces unavailable: {exc}", file=sys.stderr)
            return False
        if pid == 0:
            try:
                child.build_run_view(scratch_size=1 << 20, exposures=self.tmp_exposures)
                child.drop_identity(root=self.root, uid=self.config.get("uid", 65534),
                                    gid=self.config.get("gid", 65534))
                os.write(write_end, b"ok" if os.getpid() == 1 else b"not PID 1")
            except BaseException as exc:
                os.write(write_end, repr(exc).encode()[:500])
            os._exit(0)
        os.close(write_end)
        answer = read_all(read_end)
        os.close(read_end)
        os.waitpid(pid, 0)
        if answer != b"ok":
            print(f"zygote: namespaces unavailable: {answer.decode(errors='replace')}", file=sys.stderr)
        return answer == b"ok"

    def serve(self) -> None:
        signal.signal(signal.SIGCHLD, self.reap)
        wire.send(self.control, {"ready": True, "pid": os.getpid(), "protections": self.protections()})
        while True:
            try:
                received = wire.receive(self.control, max_fds=1)
            except (wire.WireError, OSError):
                break
            if received is None:
                break
            request, fds = received
            if request.get("op") == "spawn":
                self.answer_spawn(request["spec"], fds[0] if fds else None)
            elif request.get("op") == "status":
                wire.send(self.control, self.status(int(request["pid"])))
            else:
                wire.send(self.control, {"error": "unknown request"})
            self.clean_leftovers()

    def answer_spawn(self, spec: dict, executable: int | None) -> None:
        try:
            pid, fds = self.spawn(spec, executable)
        except OSError as exc:
            wire.send(self.control, {"error": f"could not start a sandbox: {exc}"})
            return
        try:
            wire.send(self.control, {"pid": pid}, fds=tuple(fds))
        finally:
            for fd in fds:
                os.close(fd)

    def spawn(self, spec: dict, executable: int | None) -> tuple[int, list[int]]:
        """Clone a sandboxed child (to exec ``executable``, a descriptor, when given); its pid
        and the server's descriptors: job (write), outcome (read), stdout, stderr, pidfd."""
        slot = self.cgroups.acquire() if self.cgroups else ""
        if self.cgroups:
            self.cgroups.configure(slot, spec.get("limits", {}))
        scratch = "/tmp" if self.namespaces else make_scratch_dir(self)
        job_read, job_write = os.pipe()
        outcome_read, outcome_write = os.pipe()
        stdout, stderr = os.memfd_create("stdout"), os.memfd_create("stderr")
        theirs = {child.STDOUT: stdout, child.STDERR: stderr, child.JOB: job_read, child.OUTCOME: outcome_write}
        if executable is not None:
            theirs[child.EXECUTABLE] = executable
        sys.stdout.flush()
        sys.stderr.flush()
        # SIGCHLD waits until the child is registered (slot, pidfd): no reaping before that.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        try:
            if self.namespaces:
                flags = child.namespace_flags(network=spec.get("network", True))
                pid = linux.clone_process(flags)
            else:
                pid = os.fork()
            if pid == 0:
                child.become_sandboxed(self, spec, theirs, slot, scratch)
            pidfd = os.pidfd_open(pid)
            self.children[pid] = (slot, None if self.namespaces else scratch)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            for fd in (job_read, outcome_write) + ((executable,) if executable is not None else ()):
                os.close(fd)
        return pid, [job_write, outcome_read, stdout, stderr, pidfd]

    def reap(self, signum: int, frame: object) -> None:
        """SIGCHLD: record how children ended and free their slots (never blocks)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.remember(pid, status)

    def remember(self, pid: int, status: int) -> None:
        self.statuses[pid] = status
        while len(self.statuses) > STATUSES_KEPT:
            self.statuses.popitem(last=False)
        slot, scratch = self.children.pop(pid, ("", None))
        if slot and self.cgroups:
            self.cgroups.release(slot)
        if not self.namespaces:
            self.leftovers.append((pid, scratch))

    def status(self, pid: int) -> dict:
        """How a child ended, for a run that produced no outcome."""
        if pid not in self.statuses and pid in self.children:
            try:
                reaped, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                reaped, status = 0, 0
            if reaped:
                self.remember(pid, status)
        if pid not in self.statuses:
            return {"running": pid in self.children}
        status = self.statuses[pid]
        return {
            "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        }

    def clean_leftovers(self) -> None:
        """Without a PID namespace: kill what reaped children left running, remove their scratch."""
        while self.leftovers:
            pid, scratch = self.leftovers.pop()
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)


def hidden_paths(hide: list[str], expose: list[str]) -> list[str]:
    """The paths to mask: those asked for, plus every directory an exposed path
    sits in that the sandbox user could not traverse (e.g. a 0700 home).
    Paths inside another mask, or inside /tmp (a tmpfs of its own), are covered already."""
    wanted = {os.path.realpath(path) for path in hide if os.path.isdir(path)}
    for path in filter(os.path.isdir, expose):
        ancestor = os.path.dirname(os.path.realpath(path))
        while ancestor not in ("/", ""):
            if not os.stat(ancestor).st_mode & 0o001:
                wanted.add(ancestor)
            ancestor = os.path.dirname(ancestor)
    inside = child.inside
    outermost = [path for path in wanted if not any(inside(path, other) for other in wanted if other != path)]
    return sorted(path for path in outermost if not inside(path, "/tmp") and path not in ("/", "/tmp"))


def make_scratch_dir(zygote: Zygote) -> str:
    """Without a mount namespace: a fresh directory under the configured scratch root."""
    path = tempfile.mkdtemp(prefix="run-", dir=zygote.config.get("scratch_root", "/tmp"))
    if zygote.root:
        os.chown(path, zygote.config.get("uid", 65534), zygote.config.get("gid", 65534))
    return path


def load_harness(preload: dict | None):
    if not preload:
        return None
    spec = importlib.util.spec_from_file_location(preload["module"], preload["path"])
    module = importlib.util.module_from_spec(spec)
    sys.modules[preload["module"]] = module
    spec.loader.exec_module(module)
    return getattr(module, preload["entry"])


def read_all(fd: int) -> bytes:
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    return data


def main() -> None:
    config = json.loads(sys.argv[1])
    zygote = Zygote(config)
    gc.freeze()  # clones no longer copy pages when the collector walks old objects
    try:
        zygote.serve()
    finally:
        if zygote.cgroups:
            zygote.cgroups.remove_all()


if __name__ == "__main__":
    try:
        main()
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
