"""The Go toolchain: found and identified outside the sandbox, run inside one.

``go version`` and ``go env GOROOT`` run once at start, outside any sandbox:
trusted commands with no user input. Every other ``go`` command (the builds
of codes and the warm-up) runs in a sandbox cloned from the runtime's own
"Go build zygote", of the same design as runs: an empty root holding GOROOT
read-only and, writable, only the build workspace (sources and outputs) and
Go's build cache; no network; one fixed uid for every build (they share the
build cache); and the build's own limits: memory (the memory cgroup, with
GOMEMLIMIT, is the real bound; RLIMIT_AS gets the headroom the Go runtime
reserves up front), CPU, processes, the wall time, and the size of any file
it writes (RLIMIT_FSIZE: a binary over the cap makes the linker fail). At most
``concurrent`` builds run at once per server process: the others wait.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from codeactions_core.errors import Unavailable
from codeactions_core.execution import (
    MIB,
    Report,
    SandboxLimits,
    SandboxSpec,
    Zygote,
    ZygoteConfig,
)
from codeactions_core.settings import Settings
from codeactions_go.cache import trim_directory
from codeactions_go.settings import GoSettings

VERSION_TIMEOUT = 15.0
OUTPUT_LIMIT = 64 * 1024
ADDRESS_HEADROOM = 1 << 30
"""The Go runtime reserves ~700 MiB of address space at start (page summaries, arena
index): ``go build`` fails under RLIMIT_AS of 768 MiB. With this headroom the address
space alone bounds each process's heap to about the build memory; the memory cgroup
and GOMEMLIMIT bound what the build really uses together."""
BUILD_PROCESSES = 256
"""Processes and threads of one build (pids cgroup): the go command, its compilers and
linker, and their threads."""
BUILD_OPEN_FILES = 4096
BACKGROUND_CPU_SHARES = 2
"""The warm-up's CPU weight: the lowest, so that builds for runs go first."""
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
SANDBOX_HOME = "/tmp/home"
SANDBOX_GOPATH = "/tmp/gopath"
WORKSPACE_INSIDE = "/build/work"
"""Where the build workspace appears inside a build sandbox (the host's path names the
deployment, and compiler messages and binaries would show it)."""
CACHE_INSIDE = "/build/cache"
MISSING = "go toolchain not found: install golang-go or set FLOWS_CODE_ACTIONS_GO_BINARY"


class ToolchainError(Exception):
    """The toolchain cannot be used; the message says why."""


@dataclass(frozen=True)
class BuildLimits:
    """What one sandboxed ``go`` command may use, and how many run at once."""

    memory: int = 1024 * MIB
    binary: int = 64 * MIB
    """Largest file a build may write: the binary, and any object on the way."""
    timeout: float = 60.0
    concurrent: int = 2
    cache: int = 1024 * MIB
    """Bytes Go's own build cache (GOCACHE) may take; the least recently used beyond go."""

    @classmethod
    def from_settings(cls, settings: Settings) -> BuildLimits:
        go = settings.plugin(GoSettings)
        return cls(
            memory=go.go_build_memory_mb * MIB,
            binary=go.go_binary_max_mb * MIB,
            timeout=float(go.go_build_timeout),
            concurrent=go.go_max_concurrent_builds,
            cache=go.go_cache_mb * MIB,
        )


@dataclass(frozen=True)
class CommandResult:
    returncode: int | None
    """``None`` when the command was stopped (its timeout, or a signal)."""
    output: str
    """Standard output and error, at most OUTPUT_LIMIT bytes of each."""
    timed_out: bool = False
    signal: int | None = None
    """The signal that ended the command's first process, if one did."""


@dataclass(frozen=True)
class Workspace:
    """One build's folder in the writable workspace: its sources and its output, on the
    host (``folder``, ``source``, ``output``) and inside the build sandbox (``inside``)."""

    folder: Path
    inside: str

    @property
    def source(self) -> Path:
        return self.folder / "src"

    @property
    def output(self) -> Path:
        return self.folder / "action"

    @property
    def inside_source(self) -> str:
        return f"{self.inside}/src"

    @property
    def inside_output(self) -> str:
        return f"{self.inside}/action"


class Toolchain:
    """One ``go`` binary, run in the build sandbox with a private, explicit environment.
    ``root`` holds ``builds/`` (one folder per build) and ``build-cache/`` (GOCACHE)."""

    def __init__(self, settings: Settings, root: Path, limits: BuildLimits | None = None) -> None:
        self.settings = settings
        self.binary = settings.plugin(GoSettings).go_binary
        self.root = root
        self.limits = limits or BuildLimits.from_settings(settings)
        self.path: str | None = None
        self.goroot = ""
        self.version = ""
        """``go version`` without its ``go version`` prefix, e.g. ``go1.19.8 linux/amd64``."""
        self.uid = settings.sandbox_uid_base - 1
        """Every build's uid (when the server runs as root): they share the build cache."""
        self.builds_started = 0
        """Sandboxed ``go`` commands started (after waiting for a slot)."""
        self._slots = threading.BoundedSemaphore(self.limits.concurrent)
        self._zygote: Zygote | None = None
        self._lock = threading.Lock()

    @property
    def workspace_root(self) -> Path:
        return self.root / "builds"

    @property
    def build_cache(self) -> Path:
        return self.root / "build-cache"

    def start(self) -> str:
        """Find the binary and GOROOT, read the version, start the build zygote;
        ToolchainError if the toolchain is unusable, Unavailable if the zygote is."""
        self.path = shutil.which(self.binary)
        if self.path is None:
            raise ToolchainError(f"{MISSING} (looked for {self.binary!r})")
        output = self._host(["version"])
        if not output.startswith("go version "):
            raise ToolchainError(f"`{self.path} version` failed: {output.strip()[:500]}")
        self.version = output.strip().removeprefix("go version ")
        self.goroot = os.path.realpath(self._host(["env", "GOROOT"]).strip())
        if not os.path.isfile(os.path.join(self.goroot, "bin", "go")):
            raise ToolchainError(f"`{self.path} env GOROOT` names no toolchain: {self.goroot!r}")
        for folder in (self.workspace_root, self.build_cache):
            folder.mkdir(parents=True, exist_ok=True)
            self._give(folder, recursive=True)
        config = ZygoteConfig.from_settings(
            self.settings,
            binds=goroot_binds(self.goroot),
            writable=(  # (host, inside) pairs
                (str(self.workspace_root.resolve()), WORKSPACE_INSIDE),
                (str(self.build_cache.resolve()), CACHE_INSIDE),
            ),
        )
        config = dataclasses.replace(config, uid_count=0, uid=self.uid, gid=self.uid)
        self.stop()
        zygote = Zygote(config, name="Go build zygote")
        zygote.start()
        self._zygote = zygote
        return self.version

    def stop(self) -> None:
        if self._zygote is not None:
            self._zygote.stop()
            self._zygote = None

    @property
    def protections(self) -> dict:
        return self._zygote.protections if self._zygote is not None else {}

    @property
    def language_version(self) -> str:
        """The ``go`` directive of generated go.mod files: the toolchain's own release."""
        match = re.match(r"go(\d+)\.(\d+)", self.version)
        return f"{match[1]}.{match[2]}" if match else "1.18"

    def environment(self) -> dict[str, str]:
        """Everything ``go`` gets: no variable of the server leaks into builds."""
        environment = {
            "PATH": f"{self.goroot}/bin:{SYSTEM_PATH}" if self.goroot else SYSTEM_PATH,
            "HOME": SANDBOX_HOME,
            "GOPATH": SANDBOX_GOPATH,
            "GOCACHE": CACHE_INSIDE,
            "TMPDIR": "/tmp",
            "GOFLAGS": "-mod=mod -buildvcs=false",
            "GOTOOLCHAIN": "local",
            "CGO_ENABLED": "0",
            "GO111MODULE": "on",
            "GOPROXY": "off",
            "GOSUMDB": "off",
            "GOWORK": "off",
            "GOENV": "off",
            "GOTELEMETRY": "off",
            "GOMAXPROCS": str(self.processors()),
            "GOMEMLIMIT": str(self.limits.memory * 8 // 10),
        }
        if self.goroot:
            environment["GOROOT"] = self.goroot
        return environment

    def processors(self) -> int:
        """The CPUs a build may use: the runs' CPU cap (SANDBOX_CPUS), at least one."""
        return max(1, min(os.cpu_count() or 1, round(self.settings.sandbox_cpus)))

    def sandbox_limits(self, *, background: bool = False) -> SandboxLimits:
        """The limits of one sandboxed ``go`` command."""
        base = SandboxLimits.from_settings(self.settings)
        return dataclasses.replace(
            base,
            memory=self.limits.memory + ADDRESS_HEADROOM,
            cgroup_memory=self.limits.memory,
            processes=BUILD_PROCESSES,
            file_size=self.limits.binary,
            scratch_size=self.limits.memory,  # go's work folder; counted in the memory cgroup
            open_files=BUILD_OPEN_FILES,
            output=OUTPUT_LIMIT,
            cpu_shares=BACKGROUND_CPU_SHARES if background else base.cpu_shares,
        )

    @contextlib.contextmanager
    def workspace(self) -> Iterator[Workspace]:
        """A fresh build folder (removed afterwards); ``give`` it once its sources are written."""
        name = uuid.uuid4().hex
        space = Workspace(folder=self.workspace_root / name, inside=f"{WORKSPACE_INSIDE}/{name}")
        space.source.mkdir(parents=True)
        try:
            yield space
        finally:
            shutil.rmtree(space.folder, ignore_errors=True)

    def give(self, folder: Path) -> None:
        """Hand a workspace folder, once its sources are written, to the build uid."""
        self._give(folder, recursive=True)

    def run(
        self,
        args: Sequence[str],
        *,
        cwd: str,
        timeout: float | None = None,
        background: bool = False,
    ) -> CommandResult:
        """``go <args>`` in ``cwd`` (a folder inside the sandbox), in a build sandbox, once a build
        slot is free. ``background``: at the lowest CPU weight, so that builds for runs go first."""
        if self.path is None or not self.goroot:
            raise ToolchainError(MISSING)
        argv = [os.path.join(self.goroot, "bin", "go"), *args]
        report = self.run_sandboxed(
            argv,
            cwd=cwd,
            timeout=self.limits.timeout if timeout is None else timeout,
            background=background,
        )
        if report.outcome and "setup_error" in report.outcome:
            problem = report.outcome["setup_error"]
            raise Unavailable(f"the Go build sandbox could not start go: {problem}")
        if report.error:
            raise Unavailable(f"the Go build sandbox failed: {report.error}")
        output = report.stdout + report.stderr
        if report.timed_out:
            return CommandResult(None, output, timed_out=True)
        returncode = report.exit_code if report.signal is None else None
        return CommandResult(returncode, output, signal=report.signal)

    def run_sandboxed(
        self, argv: Sequence[str], *, cwd: str, timeout: float, background: bool = False
    ) -> Report:
        """Any program (by its path inside the sandbox) in a build sandbox: the report."""
        if self._zygote is None:
            raise Unavailable("the Go build sandbox is not started")
        spec = SandboxSpec(
            timeout=timeout,
            limits=self.sandbox_limits(background=background),
            argv=list(argv),
            env=self.environment(),
            network="none",
            cwd=cwd,
        )
        with self._slots:
            with self._lock:
                self.builds_started += 1
            return self._zygote.run(spec, {})

    def trim_build_cache(self) -> int:
        """Keep Go's build cache within its byte cap (least recently used out); bytes removed."""
        with self._lock:
            return trim_directory(
                self.build_cache, self.limits.cache, keep_newer_than=self.limits.timeout
            )

    def _host(self, args: Sequence[str]) -> str:
        """A trusted ``go`` command outside the sandbox (no user input): its output."""
        environment = {key: value for key, value in self.environment().items() if key != "GOROOT"}
        try:
            result = subprocess.run(
                [self.path or self.binary, *args],
                check=False,
                env=environment,
                cwd="/",
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=VERSION_TIMEOUT,
                start_new_session=True,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ToolchainError(f"`{self.path} {' '.join(args)}` failed: {exc}") from None
        if result.returncode != 0:
            message = (result.stdout + result.stderr).decode(errors="replace").strip()[:500]
            raise ToolchainError(f"`{self.path} {' '.join(args)}` failed: {message}")
        return result.stdout.decode(errors="replace")

    def _give(self, folder: Path, *, recursive: bool) -> None:
        """Owned by the build uid, when this server is root (otherwise it is its own)."""
        if os.geteuid() != 0:
            return
        os.lchown(folder, self.uid, self.uid)
        if recursive:
            for parent, folders, files in os.walk(folder):
                for name in folders + files:
                    os.lchown(os.path.join(parent, name), self.uid, self.uid)


def goroot_binds(goroot: str) -> list[str]:
    """GOROOT and where its symbolic links lead (Debian keeps src, api, misc and test in
    /usr/share/go-X): read-only in the build sandbox."""
    binds = {goroot}
    for parent, folders, files in os.walk(goroot):  # links to folders are listed, not followed
        for name in folders + files:
            path = os.path.join(parent, name)
            if os.path.islink(path):
                target = os.path.realpath(path)
                if not (target + os.sep).startswith(goroot + os.sep) and os.path.exists(target):
                    binds.add(target)
    return sorted(binds)
