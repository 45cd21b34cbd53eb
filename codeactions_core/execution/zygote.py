"""The sandbox zygote: a small, clean process that forks one sandbox per run.

Started by the server as ``python -I -S zygote.py CONFIG`` with an empty
environment and no inherited file descriptors but its control socket. It may
preload a language harness (the Python runtime's), so that a run costs a
fork, not an interpreter start. Stdlib only; ``linux`` and ``wire`` are its
siblings, imported as top-level modules.

For every ``spawn`` request it forks a *supervisor* (C1), which:

1. joins per-run cgroups (pids, memory, cpu) when the zygote found them writable;
2. enters new mount, PID, IPC and UTS (and, with the network off, network)
   namespaces, then builds the run's view of the file system: an empty tmpfs
   on ``/tmp`` (the scratch directory), empty read-only tmpfs over the hidden
   paths (the server's working, data and home directories), with only the
   paths a runtime needs (its interpreter, its harness) bound back read-only;
3. forks the sandboxed child (C2), PID 1 of the new PID namespace, which
   mounts its own ``/proc``, takes its file descriptors (0 ``/dev/null``,
   1 and 2 memory files, 3 the job, 4 the outcome), lowers its resource
   limits, becomes an unprivileged user (or drops every capability inside a
   user namespace) and execs the program, or calls the preloaded harness;
4. hands C2's job and outcome pipes and its output files to the server,
   which writes the job, reads the outcome and enforces the timeout itself
   (talking to C2 directly saves two process wake-ups per run);
5. waits for the server to say the run is over (or to go away), then kills
   what is left of C2 (being PID 1, it takes every process it started with
   it), reaps it and reports its exit status.

Each layer is used only when the probe at start-up shows it works here; the
server shows which in its log and ``/health``.
"""

from __future__ import annotations

import errno
import gc
import importlib.util
import json
import os
import signal
import socket
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves it out

import linux  # noqa: E402
import wire  # noqa: E402
from cgroups import CgroupPlacer  # noqa: E402
from supervisor import Supervisor, build_view, drop_identity, enter_namespaces, inside  # noqa: E402

sys.path.pop(0)  # user code imports nothing from here


class Zygote:
    """The serving loop, and what it learnt at start-up about this machine."""

    def __init__(self, config: dict) -> None:
        self.config = config
        self.control = socket.socket(fileno=config["control_fd"])
        self.root = os.geteuid() == 0
        self.harness = load_harness(config.get("preload"))
        self.hidden = hidden_paths(config.get("hide", []), config.get("expose", []))
        self.cgroups = CgroupPlacer(config) if config.get("want_cgroups", True) else None
        if self.cgroups is not None and not self.cgroups.controllers:
            self.cgroups = None
        self.namespaces = config.get("want_namespaces", True) and self.probe_namespaces()
        self.children: dict[int, str] = {}

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

    def probe_namespaces(self) -> bool:
        """Try the whole namespace setup once in a throwaway child."""
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            try:
                enter_namespaces(self, network=True)
                build_view(self, scratch_size=1 << 20)
                child = os.fork()
                if child == 0:
                    try:
                        linux.mount("proc", "/proc", "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
                        drop_identity(self)
                        os._exit(0 if os.getpid() == 1 else 3)
                    except BaseException:
                        os._exit(4)
                _, status = os.waitpid(child, 0)
                os.write(write_end, b"ok" if os.waitstatus_to_exitcode(status) == 0 else b"child")
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
            if request.get("op") != "spawn" or len(fds) != 1:
                for fd in fds:
                    os.close(fd)
                wire.send(self.control, {"error": "bad request"})
                continue
            try:
                pid = self.spawn(request["spec"], fds[0])
            except OSError as exc:
                wire.send(self.control, {"error": f"fork failed: {exc}"})
            else:
                wire.send(self.control, {"pid": pid})
            finally:
                os.close(fds[0])

    def spawn(self, spec: dict, run_fd: int) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        # SIGCHLD waits until the child is registered, so its cgroup slot is released.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        try:
            slot = self.cgroups.acquire() if self.cgroups else ""
            pid = os.fork()
            if pid == 0:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
                self.become_supervisor(spec, run_fd, slot)
            self.children[pid] = slot
            return pid
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})

    def become_supervisor(self, spec: dict, run_fd: int, slot: str) -> None:
        """C1: never returns."""
        code = 0
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            self.control.close()
            Supervisor(self, spec, socket.socket(fileno=run_fd), slot).run()
        except BaseException:
            traceback.print_exc()
            code = 70
        os._exit(code)

    def reap(self, signum: int, frame: object) -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = self.children.pop(pid, None)
            if slot and self.cgroups:
                self.cgroups.release(slot)


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
    outermost = [path for path in wanted if not any(inside(path, other) for other in wanted if other != path)]
    return sorted(path for path in outermost if not inside(path, "/tmp") and path not in ("/", "/tmp"))


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
    gc.freeze()  # forks no longer copy pages when the collector walks old objects
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
