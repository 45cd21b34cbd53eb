"""The sandbox zygote: a small, clean process that clones one sandboxed process per run.

Started by the server as ``python -I -S zygote.py CONFIG`` with an empty
environment and no inherited file descriptors but its control socket. It may
preload a language harness (the Python runtime's), so that a run costs a
clone, not an interpreter start. Stdlib only; its sibling modules (``linux``,
``wire``, ``child``, ``cgroups``, ``identities``, ``rootfs``, ``seccomp``) are imported as
top-level modules.

At start-up, before it serves anything, the zygote:

1. loads the harness, opens its cgroup directories and compiles the seccomp filter
   (all of which need the host's files);
2. moves into a mount namespace of its own (and a user namespace when not root) and
   builds the allowlist root (``rootfs.py``): an empty tmpfs with only the declared
   paths bound read-only, a minimal /dev and /etc; then ``pivot_root``s into it, so
   that neither it nor any child can reach the rest of the host's file system;
3. probes a whole child setup once, so that ``protections`` says what really works.

For every ``spawn`` request it picks a cgroup slot and an identity (its own uid,
claimed machine-wide), clones the child into new mount, PID, IPC, UTS (and,
unless it joins a prepared one, network) namespaces, and hands the server the
job and outcome pipes, the stdout/stderr memory files and a pidfd. The child
sets itself up (``child.py``) and runs the code; the server supervises it and
kills it at its deadline: being PID 1, it takes every process it started with
it. The zygote reaps its children, remembers how they ended, and recycles
their slots and identities.
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
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves it out

import child
import linux
import rootfs
import wire
from cgroups import CgroupPlacer
from identities import Identities, Identity

try:
    import seccomp
except ImportError:  # pragma: no cover - the module ships beside this one
    seccomp = None

sys.path.pop(0)  # user code imports nothing from here

STATUSES_KEPT = 4096


@dataclass
class Slot:
    """What one child holds while it lives: cgroup slot, identity, scratch directory."""

    cgroup: str
    identity: Identity
    scratch: str

    @property
    def uid(self) -> int:
        return self.identity.uid

    @property
    def own_uid(self) -> bool:
        return self.identity.own


class ZygoteServer:
    """The serving loop, and what it learnt at start-up about this machine."""

    def __init__(self, config: dict) -> None:
        self.config = config
        self.control = socket.socket(fileno=config["control_fd"])
        self.root = os.geteuid() == 0
        self.outside_uid, self.outside_gid = os.geteuid(), os.getegid()
        self.gid = int(config.get("gid", 65534))
        self.hostname = config.get("hostname") or "sandbox"
        self.problems: dict[str, str] = {}
        self.harness = load_harness(config.get("preload"))
        self.cgroups = CgroupPlacer(config) if config.get("want_cgroups", True) else None
        if self.cgroups is not None and not self.cgroups.controllers:
            self.problems["cgroups"] = (
                getattr(self.cgroups, "problem", None)
                or "no writable cgroup controller (v1 or v2) for this process"
            )
            self.cgroups = None
        elif self.cgroups is None:
            self.problems["cgroups"] = "turned off by the server's configuration"
        self.seccomp_program = self.compile_seccomp()
        self.install_seccomp = seccomp.install if seccomp is not None else None
        own_range = self.root and int(config.get("uid_count", 0)) > 0
        if not self.root:
            self.problems["uid"] = "not root: every run has the server's uid (in a user namespace)"
        elif not own_range:
            self.problems["uid"] = "SANDBOX_UID_COUNT is 0: every run has the same uid"
        self.identities = Identities(
            int(config.get("uid_base", 200000)),
            int(config.get("uid_count", 0)) if own_range else 0,
            (int(config.get("uid", 65534)), self.gid),
        )
        self.run_proc = True
        self.namespaces = (
            bool(config.get("want_namespaces", True)) and self.enter_root() and self.probe()
        )
        if not config.get("want_namespaces", True):
            self.problems["namespaces"] = "turned off by the server's configuration"
        self.children: dict[int, Slot] = {}
        self.statuses: collections.OrderedDict[int, int] = collections.OrderedDict()
        self.leftovers: list[tuple[int, Slot]] = []  # fallback mode: groups to kill, dirs to remove

    def compile_seccomp(self) -> bytes | None:
        """The filter every child installs, compiled once (None, with the reason noted, if not
        here)."""
        if not self.config.get("want_seccomp", True):
            self.problems["seccomp"] = "turned off by the server's configuration"
            return None
        if seccomp is None:
            self.problems["seccomp"] = "the seccomp module is missing"
            return None
        usable, reason = seccomp.available()
        if not usable:
            self.problems["seccomp"] = reason
            return None
        try:
            return seccomp.build_filter()
        except OSError as exc:
            self.problems["seccomp"] = f"building the filter failed: {exc}"
            return None

    def protections(self) -> dict:
        userns = self.namespaces and not self.root
        if self.identities.count:
            identity = "own uid per sandbox"
        else:
            identity = "one uid for every run"
        cgroups = {"version": None, "controllers": []}
        if self.cgroups is not None:
            cgroups = self.cgroups.protections()
        return {
            "namespaces": (["mount", "pid", "ipc", "uts", "network"] + (["user"] if userns else []))
            if self.namespaces
            else [],
            "filesystem": "allowlist root" if self.namespaces else "host file system",
            "identity": identity,
            "uid_range": [self.identities.base, self.identities.base + self.identities.count - 1]
            if self.identities.count
            else None,
            "seccomp": bool(self.seccomp_program),
            "seccomp_denies": list(getattr(seccomp, "DENIED", ())) if self.seccomp_program else [],
            "capabilities_dropped": self.root or userns,
            "cgroups": cgroups,
            "rlimits": ["as", "cpu", "fsize", "nofile", "nproc", "core"],
            "no_new_privs": True,
            "clean_environment": True,
            "off": dict(self.problems),
        }

    def enter_root(self) -> bool:
        """Move into a mount namespace of our own (and a user namespace when not root),
        build the allowlist root there and pivot into it."""
        config = self.config
        try:
            if self.root:
                linux.unshare(linux.CLONE_NEWNS | linux.CLONE_NEWUTS)
            else:
                linux.unshare(linux.CLONE_NEWUSER | linux.CLONE_NEWNS | linux.CLONE_NEWUTS)
                linux.map_to_root(self.outside_uid, self.outside_gid)
            linux.sethostname(self.hostname)  # every child's own UTS namespace starts as a copy
            etc = rootfs.etc_files(
                uid_base=self.identities.base,
                uid_count=self.identities.count,
                fallback_uid=int(config.get("uid", 65534)),
                fallback_gid=self.gid,
                hostname=self.hostname,
                resolv_conf=config.get("resolv_conf", ""),
            )
            rootfs.build(
                list(config.get("binds", [])),
                list(config.get("writable", [])),
                list(config.get("masks", [])),
                etc,
                host_proc=not self.root,
            )
        except OSError as exc:
            self.problems["namespaces"] = f"namespaces unavailable: {exc}"
            print(f"zygote: {self.problems['namespaces']}", file=sys.stderr)
            return False
        return True

    def probe(self) -> bool:
        """Try a child's whole setup once, in a throwaway child."""
        read_end, write_end = os.pipe()
        try:
            pid = linux.clone_process(child.namespace_flags(new_network=True))
        except OSError as exc:
            self.problems["namespaces"] = f"namespaces unavailable: {exc}"
            print(f"zygote: {self.problems['namespaces']}", file=sys.stderr)
            return False
        if pid == 0:
            try:
                linux.loopback_up()
                proc = b""
                try:
                    rootfs.mount_run_filesystems(scratch_size=1 << 20, shm_size=1 << 20)
                except OSError:
                    proc = b" noproc"
                    rootfs.mount_run_filesystems(scratch_size=1 << 20, shm_size=1 << 20, proc=False)
                uid, gid = self.identities.fallback
                child.drop_identity(root=self.root, uid=uid, gid=gid)
                linux.set_no_new_privs()
                if self.seccomp_program:
                    self.install_seccomp(self.seccomp_program)
                os.write(write_end, (b"ok" if os.getpid() == 1 else b"not PID 1") + proc)
            except BaseException as exc:  # noqa: BLE001 - the probe reports any failure
                os.write(write_end, repr(exc).encode()[:500])
            os._exit(0)
        os.close(write_end)
        answer = read_all(read_end)
        os.close(read_end)
        os.waitpid(pid, 0)
        if answer == b"ok noproc":
            self.run_proc = False
            self.problems["proc"] = (
                "a PID namespace's /proc cannot be mounted here: runs have no /proc"
            )
            return True
        if answer != b"ok":
            self.problems["namespaces"] = (
                f"namespaces unavailable: {answer.decode(errors='replace')}"
            )
            print(f"zygote: {self.problems['namespaces']}", file=sys.stderr)
        return answer == b"ok"

    def serve(self) -> None:
        signal.signal(signal.SIGCHLD, self.reap)
        wire.send(
            self.control, {"ready": True, "pid": os.getpid(), "protections": self.protections()}
        )
        while True:
            try:
                received = wire.receive(self.control, max_fds=2)
            except (wire.WireError, OSError):
                break
            if received is None:
                break
            request, fds = received
            if request.get("op") == "spawn":
                named = dict(zip(request.get("fds", []), fds))
                self.answer_spawn(request["spec"], named.get("executable"), named.get("netns"))
            else:
                for fd in fds:
                    os.close(fd)
                if request.get("op") == "status":
                    wire.send(self.control, self.status(int(request["pid"])))
                else:
                    wire.send(self.control, {"error": "unknown request"})
            self.clean_leftovers()

    def answer_spawn(self, spec: dict, executable: int | None, netns: int | None) -> None:
        try:
            pid, fds = self.spawn(spec, executable, netns)
        except OSError as exc:
            wire.send(self.control, {"error": f"could not start a sandbox: {exc}"})
            return
        try:
            wire.send(self.control, {"pid": pid}, fds=tuple(fds))
        finally:
            for fd in fds:
                os.close(fd)

    def spawn(self, spec: dict, executable: int | None, netns: int | None) -> tuple[int, list[int]]:
        """Clone a sandboxed child (to exec ``executable``, a descriptor, when given; joining
        network namespace ``netns`` when given); its pid and the server's descriptors:
        job (write), outcome (read), stdout, stderr, pidfd."""
        cgroup, identity, registered = "", None, False
        try:
            cgroup = self.cgroups.acquire() if self.cgroups else ""
            if self.cgroups:
                self.cgroups.configure(cgroup, spec.get("limits", {}))
            scratch = "/tmp" if self.namespaces else make_scratch_dir(self)
            identity = self.identities.acquire()
            slot = Slot(cgroup, identity, scratch)
            if not self.namespaces and self.root:
                os.chown(scratch, slot.uid, slot.identity.gid)
            job_read, job_write = os.pipe()
            outcome_read, outcome_write = os.pipe()
            stdout, stderr = os.memfd_create("stdout"), os.memfd_create("stderr")
            theirs = {
                child.STDOUT: stdout,
                child.STDERR: stderr,
                child.JOB: job_read,
                child.OUTCOME: outcome_write,
            }
            if executable is not None:
                theirs[child.EXECUTABLE] = executable
            sys.stdout.flush()
            sys.stderr.flush()
            # SIGCHLD waits until the child is registered (slot, pidfd): no reaping before that.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
            try:
                if self.namespaces:
                    new_network = netns is None and spec.get("network") != "host"
                    pid = linux.clone_process(child.namespace_flags(new_network=new_network))
                else:
                    pid = os.fork()
                if pid == 0:
                    child.become_sandboxed(self, spec, theirs, slot, netns)
                pidfd = os.pidfd_open(pid)
                self.children[pid] = slot
                registered = True
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
                os.close(job_read)
                os.close(outcome_write)
        finally:
            for fd in (executable, netns):
                if fd is not None:
                    os.close(fd)
            if not registered:  # nothing was started in them: give slot and identity back
                if cgroup and self.cgroups:
                    self.cgroups.release(cgroup)
                if identity is not None:
                    self.identities.release(identity)
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
        slot = self.children.pop(pid, None)
        if slot is None:
            return
        if slot.cgroup and self.cgroups:
            self.cgroups.release(slot.cgroup)
        if self.namespaces:  # PID 1 is gone: so is every process of the run
            self.identities.release(slot.identity)
        else:  # its processes may live on: the identity comes back once they are killed
            self.leftovers.append((pid, slot))

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
            pid, slot = self.leftovers.pop()
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            shutil.rmtree(slot.scratch, ignore_errors=True)
            self.identities.release(slot.identity)


def make_scratch_dir(zygote: ZygoteServer) -> str:
    """Without a mount namespace: a fresh directory under the configured scratch root."""
    return tempfile.mkdtemp(prefix="run-", dir=zygote.config.get("scratch_root", "/tmp"))


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
    zygote = ZygoteServer(config)
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
