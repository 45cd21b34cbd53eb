"""The server's handle on the sandbox: one zygote process, many sandboxed runs.

See ``zygote.py`` for what happens on the other side of the socket.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codeactions_core.errors import Unavailable
from codeactions_core.execution import wire
from codeactions_core.execution.zygote_config import ZygoteConfig, covered_binds
from codeactions_core.settings import Settings

if TYPE_CHECKING:
    from codeactions_core.execution.network import NetworkSlot, SandboxNetwork

log = logging.getLogger(__name__)

ZYGOTE = Path(__file__).with_name("zygote.py")
START_TIMEOUT = 20.0
REPORT_GRACE = 5.0  # how long a process that sent no outcome may take to end
EXIT_GRACE = 0.05  # once it exited, how long to wait for its outcome pipe to close
CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"
MIB = 1024 * 1024


@dataclass(frozen=True)
class SandboxLimits:
    """What one run may use. Sizes in bytes."""

    memory: int = 512 * MIB
    """Address-space limit (RLIMIT_AS); runtimes add the headroom their VM reserves."""
    cgroup_memory: int = 512 * MIB
    """Resident memory of the whole run, when the memory cgroup is available."""
    processes: int = 64
    """Processes and threads of one run (pids cgroup)."""
    nproc: int = 4096
    """Processes of the sandbox user across all runs (RLIMIT_NPROC): the backstop without
    cgroups."""
    file_size: int = 16 * MIB
    scratch_size: int = 64 * MIB
    open_files: int = 256
    output: int = MIB
    """Each of stdout and stderr is kept up to this size."""
    outcome: int = 8 * MIB
    cpu_shares: int = 1024
    """cgroup CPU shares of a run (v1; v2 weight 100): equal for every run."""
    cpu_quota_us: int = 100_000
    """cgroup CPU time per 100 ms period: one core by default (SANDBOX_CPUS)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxLimits:
        memory = settings.sandbox_memory_mb * MIB
        if settings.resource_enabled and settings.memory_limit:
            cgroup_memory = settings.memory_limit
        else:
            cgroup_memory = memory
        resources = settings.resource_enabled
        return cls(
            memory=memory,
            cgroup_memory=cgroup_memory,
            cpu_shares=settings.cpu_shares if resources and settings.cpu_shares else 1024,
            cpu_quota_us=settings.cpu_quota
            if resources and settings.cpu_quota
            else round(settings.sandbox_cpus * 100_000),
            processes=settings.sandbox_processes,
            file_size=settings.sandbox_file_size_mb * MIB,
            scratch_size=settings.sandbox_scratch_mb * MIB,
            open_files=settings.sandbox_open_files,
            output=settings.sandbox_output_kb * 1024,
        )


@dataclass(frozen=True)
class SandboxSpec:
    """How to start one sandboxed process."""

    timeout: float
    limits: SandboxLimits
    argv: Sequence[str] = ()
    """Program to exec; empty: call the zygote's preloaded harness instead."""
    executable: str | None = None
    """Opened by the server and exec'd by descriptor: the sandbox need not see its path."""
    env: Mapping[str, str] = field(default_factory=dict)
    network: str = "egress"
    """``egress``, ``none`` or ``host`` (SANDBOX_NETWORK); the server's mode in force may be
    weaker."""
    cwd: str | None = None
    """Working directory inside the sandbox; default its private /tmp."""

    def to_wire(self, network: str) -> dict[str, Any]:
        return {
            "timeout": self.timeout,
            "limits": asdict(self.limits),
            "argv": list(self.argv),
            "env": {"PATH": CLEAN_PATH, "LANG": "C.UTF-8", **self.env},
            "network": network,
            "cwd": self.cwd,
        }


@dataclass
class Report:
    """What the supervisor saw of one run."""

    outcome: dict[str, Any] | None = None
    exit_code: int | None = None
    signal: int | None = None
    timed_out: bool = False
    stdout: str = ""
    stdout_truncated: bool = False
    stderr: str = ""
    stderr_truncated: bool = False
    error: str | None = None


class Sandbox:
    """One sandboxed process, waiting for its job. The server holds its pipes,
    output files and a pidfd, and supervises the run itself: it writes the job,
    reads the outcome and kills the process at the deadline."""

    def __init__(
        self,
        zygote: Zygote,
        pid: int,
        fds: Sequence[int],
        spec: SandboxSpec,
        network: NetworkSlot | None = None,
    ) -> None:
        self.pid = pid
        self.spec = spec
        self._zygote = zygote
        self._network = network
        self._job, self._outcome, self._stdout, self._stderr, self._pidfd = fds

    def run(self, job: Mapping[str, Any], timeout: float | None = None) -> Report:
        """Run the job; the report of what happened. Never raises for the user's code."""
        timeout = self.spec.timeout if timeout is None else timeout
        try:
            report = self._supervise(json.dumps(job, separators=(",", ":")).encode(), timeout)
            report.stdout, report.stdout_truncated = read_capped(
                self._stdout, self.spec.limits.output
            )
            report.stderr, report.stderr_truncated = read_capped(
                self._stderr, self.spec.limits.output
            )
            if report.outcome is None and report.error is None:
                self._add_exit_status(report)
            return report
        finally:
            self.discard()

    def _supervise(self, job: bytes, timeout: float) -> Report:
        deadline = time.monotonic() + timeout
        cap = self.spec.limits.outcome
        os.set_blocking(self._job, False)
        poller = select.poll()
        poller.register(self._job, select.POLLOUT)
        poller.register(self._outcome, select.POLLIN)
        poller.register(self._pidfd, select.POLLIN)
        outcome = bytearray()
        sent = 0
        exited = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if exited:  # it ended; a child it left holds the pipe open
                    return self._parse(outcome)
                self.kill()
                return Report(timed_out=True)
            for fd, _ in poller.poll(remaining * 1000):
                if fd == self._pidfd:
                    poller.unregister(self._pidfd)
                    exited = True
                    deadline = min(deadline, time.monotonic() + EXIT_GRACE)
                    continue
                if fd == self._job:
                    try:
                        sent += os.write(self._job, job[sent : sent + 65536])
                    except BrokenPipeError:  # it stopped reading: it will answer or die
                        sent = len(job)
                    if sent >= len(job):
                        poller.unregister(self._job)
                        os.close(self._job)
                        self._job = -1
                    continue
                chunk = os.read(self._outcome, 65536)
                if not chunk:
                    return self._parse(outcome)
                outcome += chunk
                if len(outcome) > cap:
                    self.kill()
                    return Report(error=f"the code's outcome exceeded {cap} bytes")

    @staticmethod
    def _parse(outcome: bytes) -> Report:
        if not outcome:
            return Report()
        try:
            return Report(outcome=json.loads(outcome))
        except ValueError:
            return Report(error="the engine sent a malformed outcome")

    def _add_exit_status(self, report: Report) -> None:
        """No outcome: wait for the process to end, then ask the zygote how it did."""
        if not select.select([self._pidfd], [], [], REPORT_GRACE)[0]:
            self.kill()
            select.select([self._pidfd], [], [], REPORT_GRACE)
        status = self._zygote.status(self.pid)
        report.exit_code = status.get("exit_code")
        report.signal = status.get("signal")

    def kill(self) -> None:
        """SIGKILL the sandboxed process; as PID 1 of its namespace it takes every descendant."""
        if self._pidfd >= 0:
            try:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def discard(self) -> None:
        """End the sandbox: kill what is left of it and close the server's descriptors."""
        self.kill()
        for name in ("_job", "_outcome", "_stdout", "_stderr", "_pidfd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)
        if self._network is not None:
            self._zygote.release_network(self._network)
            self._network = None


def read_capped(fd: int, cap: int) -> tuple[str, bool]:
    """A memory file's text, at most ``cap`` bytes of it, and whether there was more."""
    size = os.fstat(fd).st_size
    data = os.pread(fd, min(size, cap), 0)
    return data.decode("utf-8", errors="replace"), size > cap


def host_resolv_conf() -> str:
    try:
        with open("/etc/resolv.conf") as handle:
            return handle.read()
    except OSError:
        return ""


class Zygote:
    """A zygote process owned by this server process; restarted when it dies."""

    def __init__(
        self,
        config: ZygoteConfig,
        name: str = "zygote",
        network: SandboxNetwork | None = None,
        interpreter: Sequence[str] = (sys.executable,),
    ) -> None:
        self.config = config
        self.name = name
        self.interpreter = tuple(interpreter)
        """The command that runs the zygote script (its Python, which the preloaded harness uses
        too)."""
        self.network = network
        """Where ``egress`` sandboxes get their network namespace; without one they get ``none``."""
        self.protections: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None

    def start(self) -> None:
        with self._lock:
            self._start()

    def _start(self) -> None:
        covered = covered_binds(self.config)
        if covered:
            raise Unavailable(
                f"the {self.name} cannot bind {', '.join(covered)}: each run mounts its own /tmp, "
                "/dev and /proc over them; bind it elsewhere with a (host path, path inside) pair"
            )
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        config = {**asdict(self.config), "control_fd": theirs.fileno()}
        config["resolv_conf"] = self.network.resolv_conf() if self.network else host_resolv_conf()
        self._process = subprocess.Popen(
            [*self.interpreter, "-I", "-S", "-B", str(ZYGOTE), json.dumps(config)],
            env={"PATH": CLEAN_PATH, "LANG": "C.UTF-8"},
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(),),
        )
        theirs.close()
        self._control = ours
        try:
            received = wire.receive(ours, deadline=time.monotonic() + START_TIMEOUT)
        except (TimeoutError, wire.WireError, OSError) as exc:
            self._stop()
            raise Unavailable(f"the {self.name} did not start: {exc}") from None
        if received is None or not received[0].get("ready"):
            self._stop()
            raise Unavailable(f"the {self.name} exited while starting (see the server log)")
        self.protections = received[0]["protections"]
        if not self.protections.get("namespaces"):  # no namespace: runs share the host's network
            self.protections.update({"network": "host", "egress_policy": None})
        elif self.network is not None:
            self.protections.update(self.network.protections())
        else:
            self.protections.update({"network": "none", "egress_policy": None})

    def spawn(self, spec: SandboxSpec) -> Sandbox:
        """A sandboxed process for ``spec``, setting itself up while the caller goes on."""
        slot, mode = self._network_for(spec.network)
        passed: dict[str, int] = {}
        try:
            if spec.executable:
                passed["executable"] = os.open(spec.executable, os.O_RDONLY | os.O_CLOEXEC)
            if slot is not None and slot.fd is not None:
                passed["netns"] = slot.fd
            request = {"op": "spawn", "spec": spec.to_wire(mode), "fds": list(passed)}
            reply, fds = self._ask(request, max_fds=5, fds=tuple(passed.values()))
        except BaseException:
            if slot is not None:
                self.release_network(slot)
            raise
        finally:
            if "executable" in passed:
                os.close(passed["executable"])
        if "pid" not in reply or len(fds) != 5:
            for fd in fds:
                os.close(fd)
            if slot is not None:
                self.release_network(slot)
            raise Unavailable(f"the {self.name} could not start a sandbox: {reply.get('error')}")
        return Sandbox(self, reply["pid"], fds, spec, slot)

    def _network_for(self, wanted: str) -> tuple[NetworkSlot | None, str]:
        """The network slot (egress) and the mode a sandbox really gets: never more than the
        server's mode in force, and ``none`` when no network is set up (fail closed)."""
        if wanted != "egress" or self.network is None:
            return None, wanted if wanted in ("none", "host") else "none"
        slot = self.network.acquire()
        if slot.fd is not None:
            return slot, "egress"
        self.network.release(slot)
        return None, "none" if slot.new_namespace else "host"

    def release_network(self, slot: NetworkSlot) -> None:
        if self.network is not None:
            self.network.release(slot)

    def status(self, pid: int) -> dict[str, Any]:
        """How a sandboxed process ended (``exit_code``, ``signal``), or ``running``."""
        try:
            return self._ask({"op": "status", "pid": pid})[0]
        except Unavailable:
            return {}

    def _ask(
        self, request: dict[str, Any], max_fds: int = 0, fds: tuple[int, ...] = ()
    ) -> tuple[dict[str, Any], list[int]]:
        """One request and its answer, restarting a dead zygote once."""
        with self._lock:
            for attempt in (1, 2):
                if self._process is None or self._process.poll() is not None:
                    if self._process is not None:
                        log.warning(
                            "the %s died (exit %s); restarting it",
                            self.name,
                            self._process.returncode,
                        )
                    self._start()
                try:
                    wire.send(self._control, request, fds=fds)
                    received = wire.receive(
                        self._control, max_fds=max_fds, deadline=time.monotonic() + START_TIMEOUT
                    )
                except (OSError, wire.WireError, TimeoutError):
                    received = None
                if received is not None:
                    return received
                self._stop()
        raise Unavailable(f"the {self.name} is not answering")

    def run(self, spec: SandboxSpec, job: Mapping[str, Any]) -> Report:
        """Spawn a sandbox and run one job in it."""
        return self.spawn(spec).run(job)

    def stop(self) -> None:
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._process is not None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
