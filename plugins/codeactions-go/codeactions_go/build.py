"""Compiling a code once per source: user file + harness, into the binary cache.

Each ``go build`` runs in the build sandbox (``toolchain.py``). A build that runs
out of memory, writes a file over the binary cap or outlasts its wall limit
fails with a message saying so. Those resource failures are cached like
compile errors, so that a compile bomb is not compiled again on every run
(it would hold a build slot each time); the entry records the limits it failed
under, and is compiled again once the limits change. A timeout may be the
machine's fault (a busy host) rather than the source's: its entry is retried
after TIMEOUT_RETRY seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from codeactions_go.cache import BinaryCache, Entry
from codeactions_go.locks import KeyedLocks
from codeactions_go.source import is_program
from codeactions_go.toolchain import MIB, BuildLimits, CommandResult, Toolchain

log = logging.getLogger(__name__)

MODULE = "codeaction"
SOURCE_FILE = "action.go"
NOT_MAIN = "the code does not compile:\nit must be in package main"
HINTS = (
    # (text in the compiler's message, for programs (True), codes with Run (False) or both, hint)
    (
        "undefined: Run",
        False,
        "the code must define func Run(engine *Engine), or be a program with its own func main()",
    ),
    (
        "undefined: Engine",
        True,
        "a program with its own func main() is built without the engine: remove main() to use Run",
    ),
    ("cannot find module providing package", None, "only Go's standard library is available"),
    ("found packages", None, "the code must be in package main"),
)
WARM_UP_TIMEOUT = 600.0
TIMEOUT_RETRY = 600.0
"""Seconds a cached build timeout stands before the source is compiled again."""
RESOURCE_MARK = "#resource "
"""First line of a cached resource failure: the limits it failed under, and when."""
MEMORY_CLUES = ("signal: killed", "out of memory", "cannot allocate memory", "failed to reserve")
SIZE_CLUES = ("file too large", "file size limit exceeded")
TIME_CLUES = ("cpu time limit exceeded",)
TIMEOUT_PREFIX = "compiling the code took longer than"
# Standard packages user code commonly imports that the installed toolchain may
# not hold prebuilt for CGO_ENABLED=0 (net and its dependents): compiled into
# the build cache, once per process, when the first code is saved.
COMMON_PACKAGES = (
    "bufio",
    "bytes",
    "context",
    "crypto/hmac",
    "crypto/md5",
    "crypto/rand",
    "crypto/sha1",
    "crypto/sha256",
    "encoding/base64",
    "encoding/csv",
    "encoding/hex",
    "encoding/json",
    "encoding/xml",
    "errors",
    "fmt",
    "io",
    "log",
    "math",
    "math/rand",
    "net/http",
    "net/url",
    "os",
    "regexp",
    "sort",
    "strconv",
    "strings",
    "sync",
    "text/template",
    "time",
    "unicode/utf8",
)


@dataclass(frozen=True)
class Build:
    """A code's binary, or why it does not compile."""

    program: bool
    """Built alone (its own ``main``): it writes no outcome; its stdout is the result."""
    path: Path | None = None
    error: str | None = None


def build_args(workdir: str, output: str) -> list[str]:
    """``go build`` of the code's package.

    Not ``-trimpath``: that flag changes how every standard package is compiled,
    so the toolchain's prebuilt standard library would not be used and a cold
    build cache would cost seconds. Only the code's own paths are trimmed.
    """
    trim = f"-gcflags={MODULE}=-trimpath={workdir}=>{MODULE}"
    return ["build", trim, "-ldflags=-s -w", "-o", output, "."]


class Builder:
    def __init__(
        self, toolchain: Toolchain, cache: BinaryCache, harness: Mapping[str, str]
    ) -> None:
        self.toolchain = toolchain
        self.cache = cache
        self.harness = dict(harness)
        self.compiles = 0
        """``go build`` runs for codes by this builder (the warm-up not counted)."""
        self._locks = KeyedLocks()
        self._count_lock = threading.Lock()

    def key(self, source: str) -> str:
        """What a binary depends on: toolchain, harness and source."""
        digest = hashlib.sha256(f"codeactions-go\0{self.toolchain.version}\0".encode())
        for name, text in sorted(self.harness.items()):
            digest.update(f"{name}\0{text}\0".encode())
        digest.update(source.encode("utf-8", errors="surrogatepass"))
        return digest.hexdigest()

    def build(self, source: str) -> Build:
        """The cached build of ``source``, compiled now (once per key at a time) when missing."""
        key, program = self.key(source), is_program(source)
        entry = self._valid(self.cache.lookup(key))
        if entry is None:
            with self._locks.hold(key):
                entry = self._valid(self.cache.lookup(key)) or self._compile(key, source, program)
        return Build(program=program, path=entry.path, error=entry.error)

    def warm_up(self) -> None:
        """Fill the Go build cache with the packages code commonly imports, at low priority."""
        with self.toolchain.workspace() as space:
            self._write(space.source, "package main\n\nfunc main() {}\n", program=True)
            self.toolchain.give(space.folder)
            args = ("build", *COMMON_PACKAGES)
            result = self.toolchain.run(
                args, cwd=space.inside_source, timeout=WARM_UP_TIMEOUT, background=True
            )
        if result.returncode != 0 and result.output.strip():
            log.warning("warming the Go build cache failed: %s", result.output.strip()[:500])
        elif result.returncode != 0:
            log.info(
                "warming the Go build cache was stopped (%s)",
                resource_failure(result, self.toolchain.limits) or "the runtime is stopping",
            )

    def _valid(self, entry: Entry | None) -> Entry | None:
        """A cached entry as it stands now: a resource failure under other limits (or a
        timeout older than TIMEOUT_RETRY) is no entry; the mark line is not shown."""
        if entry is None or entry.error is None or not entry.error.startswith(RESOURCE_MARK):
            return entry
        mark, _, message = entry.error.partition("\n")
        tag, _, when = mark.removeprefix(RESOURCE_MARK).partition(" ")
        if tag != limits_tag(self.toolchain.limits):
            return None
        if message.startswith(TIMEOUT_PREFIX) and time.time() - float(when or 0) > TIMEOUT_RETRY:
            return None
        return Entry(error=message)

    def _compile(self, key: str, source: str, program: bool) -> Entry:
        with self.toolchain.workspace() as space:
            self._write(space.source, source, program)
            self.toolchain.give(space.folder)
            args = build_args(space.inside_source, space.inside_output)
            result = self.toolchain.run(args, cwd=space.inside_source)
            with self._count_lock:
                self.compiles += 1
            failure = resource_failure(result, self.toolchain.limits)
            if failure is not None:
                log.warning("a Go build failed: %s", failure)
                mark = f"{RESOURCE_MARK}{limits_tag(self.toolchain.limits)} {time.time():.0f}\n"
                self.cache.add_error(key, mark + failure)
                return Entry(error=failure)
            if result.returncode == 0:
                staged = self.cache.adopt(space.output)
                if staged is None:
                    return Entry(error="the build wrote no program")
                try:
                    if not is_executable(staged):  # an archive: a package other than main
                        return self.cache.add_error(key, NOT_MAIN)
                    return self.cache.add_binary(key, staged)
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        staged.unlink()
                    self._trim()
        message = compiler_message(result.output, space.inside_source, program)
        if result.returncode in (1, 2) and SOURCE_FILE in result.output:
            return self.cache.add_error(key, message)  # the source's fault: for good
        return Entry(error=message)

    def _trim(self) -> None:
        try:
            self.toolchain.trim_build_cache()
        except OSError as exc:
            log.warning("trimming the Go build cache failed: %s", exc)

    def _write(self, workdir: Path, source: str, program: bool) -> None:
        """go.mod, the user's file and, unless it is a program, the harness."""
        go_mod = f"module {MODULE}\n\ngo {self.toolchain.language_version}\n"
        (workdir / "go.mod").write_text(go_mod)
        (workdir / SOURCE_FILE).write_text(source, encoding="utf-8", errors="surrogatepass")
        if not program:
            for name, text in self.harness.items():
                (workdir / name).write_text(text, encoding="utf-8")


def limits_tag(limits: BuildLimits) -> str:
    """The limits a resource failure depends on, as one word."""
    return f"memory={limits.memory // MIB},binary={limits.binary // MIB},timeout={limits.timeout:g}"


def resource_failure(result: CommandResult, limits: BuildLimits) -> str | None:
    """Why a build failed when a limit stopped it, in words; ``None`` when none did.
    The compiler quotes the source in its messages: lines naming it are not clues."""
    if result.timed_out:
        return f"{TIMEOUT_PREFIX} {limits.timeout:g} s"
    text = "\n".join(line for line in result.output.lower().splitlines() if SOURCE_FILE not in line)
    if result.signal == signal.SIGXFSZ or any(clue in text for clue in SIZE_CLUES):
        return f"the compiled program is larger than {limits.binary // MIB} MiB"
    if result.signal == signal.SIGKILL or any(clue in text for clue in MEMORY_CLUES):
        return f"compiling the code needed more than {limits.memory // MIB} MiB of memory"
    if result.signal == signal.SIGXCPU or any(clue in text for clue in TIME_CLUES):
        return f"{TIMEOUT_PREFIX} {limits.timeout:g} s"
    return None


def compiler_message(output: str, workdir: str, program: bool) -> str:
    """The compiler's message without temporary paths or package headers, with a hint."""
    lines = output.replace(workdir, ".").splitlines()
    text = "\n".join(line for line in lines if not line.startswith("# ")).strip()
    for clue, kind, hint in HINTS:
        if clue in text and kind in (None, program):
            text += f"\n({hint})"
    return f"the code does not compile:\n{text}"


def is_executable(path: Path) -> bool:
    """An ELF file: ``go build`` writes an archive for a package other than main."""
    with open(path, "rb") as file:
        return file.read(4) == b"\x7fELF"
