"""The hardened pip installer of Python libraries.

Installs are defensive, because a library's name comes from a user's source:

- binary wheels only (``--only-binary=:all:``): building an sdist would run its
  setup code as the server's user; a wheel is only unpacked;
- pip sees no configuration file, no variable of ours and no user site: it runs
  as ``python -I -m pip --isolated`` with ``PIP_CONFIG_FILE=/dev/null`` and a
  minimal environment built here (no proxy or index variables are passed on);
- one library per pip process, within ``LIBS_INSTALL_TIMEOUT`` for all the
  libraries of one request (its whole process group killed past it), output
  kept to its last 64 KiB, errors reduced to pip's essential line;
- one installer at a time across processes (``flock`` on a file beside the libs
  directory, out of the sandbox's sight so that no run can hold it);
- pip writes into a staging directory; only a successful install is moved into
  the libs directory, where nothing present is ever replaced (a distribution
  already installed, in any version, keeps its files) and no top-level name of
  the standard library is ever added (it would shadow that module for every
  code were the libs directory ever put first on ``sys.path``);
- ``SKIPLIST`` terms (import or distribution names) are never installed.
"""

from __future__ import annotations

import csv
import fcntl
import importlib.util
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from codeactions_core.errors import InvalidInput, Unavailable
from codeactions_core.execution.sandbox import CLEAN_PATH
from codeactions_core.libs.imports import MODULE_NAME, distribution_of, is_standard, normalize

log = logging.getLogger(__name__)

OUTPUT_CAP = 64 * 1024
ERROR_CAP = 300
LOCK_POLL_SECONDS = 0.1
NOT_INSTALLED = frozenset({"bin"})
"""Staged entries never moved into the libs directory (console scripts: useless in the sandbox)."""
PIP_ERROR = re.compile(r"^\s*error:\s*(\S.*)$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class PipResult:
    returncode: int | None
    """None: pip was killed at its deadline."""
    output: str
    """The end of pip's combined output, at most OUTPUT_CAP bytes of it."""


PipRunner = Callable[[Sequence[str], Path, Mapping[str, str], float], PipResult]
"""Runs pip: (argv, working directory, environment, timeout in seconds) -> result."""


def run_pip(argv: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float) -> PipResult:
    """Run pip to completion or its deadline (its process group killed then); output capped."""
    output_path = cwd / "pip-output.txt"
    with open(output_path, "wb") as output:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            returncode: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            returncode = None
    return PipResult(returncode, read_tail(output_path, OUTPUT_CAP))


def read_tail(path: Path, cap: int) -> str:
    """The last ``cap`` bytes of a file, as text."""
    with open(path, "rb") as file:
        file.seek(max(0, file.seek(0, os.SEEK_END) - cap))
        return file.read().decode("utf-8", errors="replace")


def require_pip() -> None:
    """Raise Unavailable when the server's interpreter has no pip (a deployment problem)."""
    if importlib.util.find_spec("pip") is None:
        raise Unavailable(
            "libraries cannot be installed: pip is not installed with the server's Python"
        )


def pip_command(target: Path, distribution: str) -> list[str]:
    """pip installing one distribution, wheels only, into ``target``."""
    return [*pip_install(target), "--", distribution]


def pip_install(target: Path) -> list[str]:
    """pip install into ``target``, wheels only, seeing no configuration (arguments follow)."""
    return [
        sys.executable,
        "-I",
        "-m",
        "pip",
        "install",
        "--isolated",
        "--no-input",
        "--disable-pip-version-check",
        "--no-cache-dir",
        "--progress-bar",
        "off",
        "--no-warn-script-location",
        "--root-user-action",
        "ignore",
        "--only-binary=:all:",
        "--target",
        str(target),
    ]


PRESETS = Path(__file__).resolve().parents[1] / "presets"
"""Named sets of pinned libraries (``<name>.txt``): ``codeactions libs install --preset NAME``."""
PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.!+_-]+$")


def preset_file(name: str) -> Path:
    """The requirements file of a preset: a name in ``presets/``, or a file path."""
    named = PRESETS / f"{name}.txt"
    if MODULE_NAME.fullmatch(name) and named.is_file():
        return named
    path = Path(name)
    if path.is_file():
        return path.resolve()
    known = ", ".join(sorted(p.stem for p in PRESETS.glob("*.txt")))
    raise InvalidInput(f"no preset {name!r}: use one of {known}, or a requirements file's path")


def preset_requirements(path: Path) -> list[str]:
    """A preset's requirements: every line ``name==version`` (comments and blanks aside)."""
    lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    requirements = [line for line in lines if line]
    loose = [line for line in requirements if not PIN.fullmatch(line)]
    if loose:
        raise InvalidInput(
            f"preset {path.name}: every line must pin one version (name==version), not {loose[0]!r}"
        )
    return requirements


def pip_environment(scratch: Path) -> dict[str, str]:
    """All pip gets of an environment: no configuration file, a scratch home."""
    return {
        "PATH": CLEAN_PATH,
        "LANG": "C.UTF-8",
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        "PIP_CONFIG_FILE": os.devnull,  # read even under --isolated: skips /etc/pip.conf too
    }


def essential_error(output: str) -> str:
    """pip's last error line (else its last line), shortened."""
    errors = PIP_ERROR.findall(output)
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    text = errors[-1].strip() if errors else (lines[-1] if lines else "pip failed silently")
    if text[1:2].islower():
        text = text[:1].lower() + text[1:]
    return text if len(text) <= ERROR_CAP else text[: ERROR_CAP - 1] + "…"


def describe_library(name: str) -> str:
    distribution = distribution_of(name)
    return repr(name) if distribution == name else f"{name!r} (distribution {distribution!r})"


@contextmanager
def exclusive_lock(path: Path, deadline: float) -> Iterator[None]:
    """Hold an flock on ``path``, waiting for another holder until ``deadline``."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Unavailable(
                        "another installation of libraries is still running; try again later"
                    ) from None
                time.sleep(LOCK_POLL_SECONDS)
        yield
    finally:
        os.close(fd)  # releases the lock


def project_of(dist_info: Path) -> str:
    """The normalized project name of a ``<name>-<version>.dist-info`` directory."""
    return normalize(dist_info.name.removesuffix(".dist-info").rpartition("-")[0])


def recorded_files(dist_info: Path, root: Path) -> set[Path]:
    """The files a distribution's RECORD lists inside ``root``, and its dist-info."""
    files = {dist_info}
    record = dist_info / "RECORD"
    if record.is_file():
        for row in csv.reader(record.read_text(errors="replace").splitlines()):
            path = Path(os.path.normpath(root / row[0])) if row else None
            if path is not None and path.is_relative_to(root):
                files.add(path)
    return files


def files_of_present_distributions(staged: Path, directory: Path) -> set[Path]:
    """Staged files of distributions the libs directory already has, in any version."""
    present = {project_of(info) for info in directory.glob("*.dist-info")}
    kept: set[Path] = set()
    for info in staged.glob("*.dist-info"):
        if project_of(info) in present:
            kept |= recorded_files(info, staged)
    return kept


def shadows_standard_library(entry: Path) -> bool:
    """A top-level entry that would be imported instead of a standard module."""
    module = entry.name if entry.is_dir() else entry.name.partition(".")[0]
    return is_standard(module)


def top_level_admitted(entry: Path) -> bool:
    if entry.name in NOT_INSTALLED:
        return False
    if shadows_standard_library(entry):
        log.warning("not installing %s: it would shadow the standard library's module", entry.name)
        return False
    return True


def move_into(staged: Path, directory: Path, left_out: set[Path]) -> list[str]:
    """Move a successful install from ``staged`` into ``directory``; the names moved.

    Entries already in ``directory`` are kept (directories are merged), as are
    ``left_out`` paths; dist-info directories come last.
    """
    moved: list[str] = []
    entries = sorted(staged.iterdir(), key=lambda p: (p.name.endswith(".dist-info"), p.name))
    for entry in filter(top_level_admitted, entries):
        if merge_entry(entry, directory / entry.name, left_out):
            moved.append(entry.name)
    return moved


def merge_entry(entry: Path, destination: Path, left_out: set[Path]) -> bool:
    """Move one entry unless left out or present; merge directories. True when anything moved."""
    both_directories = entry.is_dir() and destination.is_dir()
    if entry in left_out or (destination.exists() and not both_directories):
        return False
    if entry.is_dir() and (destination.exists() or any(inside(path, entry) for path in left_out)):
        destination.mkdir(mode=0o755, exist_ok=True)
        children = list(entry.iterdir())
        merged = [merge_entry(child, destination / child.name, left_out) for child in children]
        return any(merged)  # every child merged: no short-circuit
    os.rename(entry, destination)
    make_readable(destination)
    return True


def inside(path: Path, folder: Path) -> bool:
    return path != folder and path.is_relative_to(folder)


def make_readable(path: Path, *, recursive: bool = True) -> None:
    """Readable (and directories traversable) by everyone: the sandbox runs as another user."""
    targets = [path, *path.rglob("*")] if recursive and path.is_dir() else [path]
    for target in targets:
        if not target.is_symlink():
            mode = target.stat().st_mode
            os.chmod(target, mode | (0o555 if target.is_dir() else 0o444))
