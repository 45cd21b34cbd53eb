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
import fcntl
import gc
import importlib.util
import json
import os
import resource
import signal
import socket
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves it out

import linux  # noqa: E402
import wire  # noqa: E402

sys.path.pop(0)  # user code imports nothing from here

PARKING_FD = 1000
STDOUT, STDERR, JOB, OUTCOME, EXECUTABLE = 1, 2, 3, 4, 5
NAMESPACES = linux.CLONE_NEWNS | linux.CLONE_NEWPID | linux.CLONE_NEWIPC | linux.CLONE_NEWUTS
CGROUP_ROOT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("pids", "memory", "cpu")


# -- configuration and probing -------------------------------------------------------


class Zygote:
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

    # -- serving ---------------------------------------------------------------------

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
        # SIGCHLD waits until the child is registered, so its cgroups get removed.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        try:
            pid = os.fork()
            if pid == 0:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
                self.become_supervisor(spec, run_fd)
            if self.cgroups:
                self.children[pid] = self.cgroups.group_name(pid)
            return pid
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})

    def become_supervisor(self, spec: dict, run_fd: int) -> None:
        """C1: never returns."""
        code = 0
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            self.control.close()
            Supervisor(self, spec, socket.socket(fileno=run_fd)).run()
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
            name = self.children.pop(pid, None)
            if name and self.cgroups:
                self.cgroups.remove(name)


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


def inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def load_harness(preload: dict | None):
    if not preload:
        return None
    spec = importlib.util.spec_from_file_location(preload["module"], preload["path"])
    module = importlib.util.module_from_spec(spec)
    sys.modules[preload["module"]] = module
    spec.loader.exec_module(module)
    return getattr(module, preload["entry"])


# -- cgroups -------------------------------------------------------------------------


class CgroupPlacer:
    """Per-run cgroups under this process's own cgroup, in each writable v1 controller."""

    def __init__(self, config: dict) -> None:
        self.bases: dict[str, str] = {}
        own = own_cgroups()
        for controller in V1_CONTROLLERS:
            mount_point = os.path.join(CGROUP_ROOT, controller)
            if controller not in own or not os.path.isdir(mount_point):
                continue
            base = os.path.join(mount_point, own[controller].lstrip("/"), f"codeactions-{os.getpid()}")
            try:
                os.makedirs(base, exist_ok=True)
            except OSError:
                continue
            self.bases[controller] = base

    @property
    def controllers(self) -> set[str]:
        return set(self.bases)

    @staticmethod
    def group_name(pid: int) -> str:
        return f"run-{pid}"

    def join(self, name: str, limits: dict, cpu: dict) -> None:
        """Create the run's groups, set their limits and move this process in."""
        settings = {
            "pids": {"pids.max": limits.get("processes")},
            "memory": {"memory.limit_in_bytes": limits.get("cgroup_memory"),
                       "memory.memsw.limit_in_bytes": limits.get("cgroup_memory")},
            "cpu": {"cpu.shares": cpu.get("shares"), "cpu.cfs_quota_us": cpu.get("quota_us")},
        }
        for controller, base in self.bases.items():
            path = os.path.join(base, name)
            os.mkdir(path)
            for knob, value in settings[controller].items():
                if value:
                    try:
                        linux.write_text(os.path.join(path, knob), str(value))
                    except OSError:
                        pass  # e.g. memsw without swap accounting
            linux.write_text(os.path.join(path, "cgroup.procs"), str(os.getpid()))

    def remove(self, name: str) -> None:
        for base in self.bases.values():
            path = os.path.join(base, name)
            for _ in range(50):
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    kill_members(path)
                    time.sleep(0.002)


def own_cgroups() -> dict[str, str]:
    groups = {}
    with open("/proc/self/cgroup") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(","):
                if controller:
                    groups[controller] = path
    return groups


def kill_members(path: str) -> None:
    try:
        with open(os.path.join(path, "cgroup.procs")) as handle:
            for line in handle:
                try:
                    os.kill(int(line), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
    except OSError:
        pass


# -- one run -------------------------------------------------------------------------


def enter_namespaces(zygote: Zygote, *, network: bool) -> None:
    flags = NAMESPACES | (0 if network else linux.CLONE_NEWNET)
    if zygote.root:
        linux.unshare(flags)
    else:
        uid, gid = os.geteuid(), os.getegid()
        linux.unshare(flags | linux.CLONE_NEWUSER)
        linux.map_to_root(uid, gid)


def build_view(zygote: Zygote, *, scratch_size: int) -> None:
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


def drop_identity(zygote: Zygote) -> None:
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

    def __init__(self, zygote: Zygote, spec: dict, run_socket: socket.socket) -> None:
        self.zygote = zygote
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
            zygote.cgroups.join(zygote.cgroups.group_name(os.getpid()), self.limits, self.spec.get("cpu", {}))
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


def make_scratch_dir(zygote: Zygote) -> str:
    """Without a mount namespace: a fresh directory under the configured scratch root."""
    import tempfile

    root = zygote.config.get("scratch_root", "/tmp")
    path = tempfile.mkdtemp(prefix="run-", dir=root)
    if zygote.root:
        os.chown(path, zygote.config.get("uid", 65534), zygote.config.get("gid", 65534))
    return path


def remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def read_all(fd: int) -> bytes:
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    return data


def main() -> None:
    config = json.loads(sys.argv[1])
    zygote = Zygote(config)
    gc.freeze()  # forks no longer copy pages when the collector walks old objects
    zygote.serve()


if __name__ == "__main__":
    try:
        main()
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
