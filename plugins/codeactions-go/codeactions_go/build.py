"""Compiling a code once per source: user file + harness, into the binary cache."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from codeactions_go.cache import BinaryCache, Entry
from codeactions_go.locks import KeyedLocks
from codeactions_go.source import is_program
from codeactions_go.toolchain import BUILD_TIMEOUT, Toolchain

MODULE = "codeaction"
SOURCE_FILE = "action.go"
NOT_MAIN = "the code does not compile:\nit must be in package main"
HINTS = (
    # (text in the compiler's message, for programs (True), codes with Run (False) or both, hint)
    (
        "undefined: Run", False,
        "the code must define func Run(engine *Engine), or be a program with its own func main()",
    ),
    (
        "undefined: Engine", True,
        "a program with its own func main() is built without the engine: remove main() to use Run",
    ),
    ("cannot find module providing package", None, "only Go's standard library is available"),
    ("found packages", None, "the code must be in package main"),
)
WARM_UP_TIMEOUT = 600.0
# Standard packages user code commonly imports that the installed toolchain may
# not hold prebuilt for CGO_ENABLED=0 (net and its dependents): compiled into
# the build cache, once per process, when the first code is saved.
COMMON_PACKAGES = (
    "bufio", "bytes", "context", "crypto/hmac", "crypto/md5", "crypto/rand", "crypto/sha1",
    "crypto/sha256", "encoding/base64", "encoding/csv", "encoding/hex", "encoding/json",
    "encoding/xml", "errors", "fmt", "io", "log", "math", "math/rand", "net/http", "net/url",
    "os", "regexp", "sort", "strconv", "strings", "sync", "text/template", "time",
    "unicode/utf8",
)


@dataclass(frozen=True)
class Build:
    """A code's binary, or why it does not compile."""

    program: bool
    """Built alone (its own ``main``): it writes no outcome; its stdout is the result."""
    path: Path | None = None
    error: str | None = None


def build_args(workdir: str, output: Path) -> list[str]:
    """``go build`` of the code's package.

    Not ``-trimpath``: that flag changes how every standard package is compiled,
    so the toolchain's prebuilt standard library would not be used and a cold
    build cache would cost seconds. Only the code's own paths are trimmed.
    """
    trim = f"-gcflags={MODULE}=-trimpath={workdir}=>{MODULE}"
    return ["build", trim, "-ldflags=-s -w", "-o", str(output), "."]


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
        entry = self.cache.lookup(key)
        if entry is None:
            with self._locks.hold(key):
                entry = self.cache.lookup(key) or self._compile(key, source, program)
        return Build(program=program, path=entry.path, error=entry.error)

    def warm_up(self) -> None:
        """Fill the Go build cache with the packages code commonly imports, at low priority."""
        with self.toolchain.workdir() as folder:
            self._write(Path(folder), "package main\n\nfunc main() {}\n", program=True)
            args = ("build", *COMMON_PACKAGES)
            self.toolchain.run(args, cwd=Path(folder), timeout=WARM_UP_TIMEOUT, background=True)

    def _compile(self, key: str, source: str, program: bool) -> Entry:
        staged = self.cache.staging()
        try:
            with self.toolchain.workdir() as folder:
                self._write(Path(folder), source, program)
                result = self.toolchain.run(build_args(folder, staged), cwd=Path(folder))
            with self._count_lock:
                self.compiles += 1
            if result.returncode == 0:
                if not is_executable(staged):  # an archive: a package other than main
                    return self.cache.add_error(key, NOT_MAIN)
                return self.cache.add_binary(key, staged)
        finally:
            with contextlib.suppress(FileNotFoundError):
                staged.unlink()
        if result.returncode is None:
            return Entry(error=f"compiling the code took longer than {BUILD_TIMEOUT:g} s")
        message = compiler_message(result.output, folder, program)
        if result.returncode in (1, 2) and SOURCE_FILE in result.output:
            return self.cache.add_error(key, message)  # the source's fault: for good
        return Entry(error=message)

    def _write(self, workdir: Path, source: str, program: bool) -> None:
        """go.mod, the user's file and, unless it is a program, the harness."""
        go_mod = f"module {MODULE}\n\ngo {self.toolchain.language_version}\n"
        (workdir / "go.mod").write_text(go_mod)
        (workdir / SOURCE_FILE).write_text(source, encoding="utf-8", errors="surrogatepass")
        if not program:
            for name, text in self.harness.items():
                (workdir / name).write_text(text, encoding="utf-8")


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
