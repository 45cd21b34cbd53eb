"""The Go toolchain: where it is, which version it is, and one bounded ``go`` command."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BUILD_TIMEOUT = 60.0
VERSION_TIMEOUT = 15.0
OUTPUT_LIMIT = 64 * 1024
BACKGROUND_NICENESS = 19
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
MISSING = "go toolchain not found: install golang-go or set FLOWS_CODE_ACTIONS_GO_BINARY"


class ToolchainError(Exception):
    """The toolchain cannot be used; the message says why."""


@dataclass(frozen=True)
class CommandResult:
    returncode: int | None
    """``None`` when the command was stopped at its timeout."""
    output: str
    """Standard output and error together, at most OUTPUT_LIMIT bytes of them."""


class Toolchain:
    """One ``go`` binary with a private, explicit environment under ``root``."""

    def __init__(self, binary: str, root: Path) -> None:
        self.binary = binary
        self.root = root
        self.path: str | None = None
        self.version = ""
        """``go version`` without its ``go version`` prefix, e.g. ``go1.19.8 linux/amd64``."""

    def start(self) -> str:
        """Find the binary, create the directories, read the version; ToolchainError if unusable."""
        self.path = shutil.which(self.binary)
        if self.path is None:
            raise ToolchainError(f"{MISSING} (looked for {self.binary!r})")
        for name in ("home", "gopath", "build-cache"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        with self.workdir() as folder:
            result = self.run(["version"], cwd=Path(folder), timeout=VERSION_TIMEOUT)
        if result.returncode != 0 or not result.output.startswith("go version "):
            raise ToolchainError(f"`{self.path} version` failed: {result.output.strip()[:500]}")
        self.version = result.output.strip().removeprefix("go version ")
        return self.version

    @property
    def language_version(self) -> str:
        """The ``go`` directive of generated go.mod files: the toolchain's own release."""
        match = re.match(r"go(\d+)\.(\d+)", self.version)
        return f"{match[1]}.{match[2]}" if match else "1.18"

    def environment(self) -> dict[str, str]:
        """Everything ``go`` gets: no variable of the server leaks into builds."""
        return {
            "PATH": f"{os.path.dirname(self.path or '')}:{SYSTEM_PATH}",
            "HOME": str(self.root / "home"),
            "GOPATH": str(self.root / "gopath"),
            "GOCACHE": str(self.root / "build-cache"),
            "GOFLAGS": "-mod=mod",
            "GOTOOLCHAIN": "local",
            "CGO_ENABLED": "0",
            "GO111MODULE": "on",
            "GOPROXY": "off",
            "GOWORK": "off",
            "GOENV": "off",
            "GOTELEMETRY": "off",
        }

    @staticmethod
    def workdir() -> tempfile.TemporaryDirectory[str]:
        """A fresh source directory, in the system's temporary directory: its path is
        recorded in binaries, and names nothing of the deployment."""
        return tempfile.TemporaryDirectory(prefix="codeactions-go-")

    def run(
        self,
        args: Sequence[str],
        *,
        cwd: Path,
        timeout: float = BUILD_TIMEOUT,
        background: bool = False,
    ) -> CommandResult:
        """``go <args>`` in ``cwd``; its whole process group is killed at the timeout.
        ``background``: at the lowest CPU priority, so that builds for runs go first."""
        if self.path is None:
            raise ToolchainError(MISSING)
        with tempfile.TemporaryFile() as output:
            process = subprocess.Popen(
                [self.path, *args],
                cwd=cwd,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            if background:  # before go starts its compilers, which inherit it
                with contextlib.suppress(OSError):
                    os.setpriority(os.PRIO_PROCESS, process.pid, BACKGROUND_NICENESS)
            try:
                returncode: int | None = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                returncode = None
            output.seek(0)
            text = output.read(OUTPUT_LIMIT).decode("utf-8", errors="replace")
        return CommandResult(returncode, text)
