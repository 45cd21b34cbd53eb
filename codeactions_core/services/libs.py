"""Python libraries of codes ("codelibs"): what a source imports, recorded and installed.

A code's libraries are the top-level modules it imports that are not in the
standard library. They are installed with the server's own interpreter
(``pip install --target``) into ``<DATA_DIR>/libs/python``, which the sandbox
shows read-only and puts on user code's ``sys.path`` after the standard library.

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

import ast
import csv
import fcntl
import importlib.util
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.machinery import (
    BYTECODE_SUFFIXES,
    EXTENSION_SUFFIXES,
    SOURCE_SUFFIXES,
    ExtensionFileLoader,
    FileFinder,
    SourceFileLoader,
    SourcelessFileLoader,
)
from pathlib import Path

from codeactions_core.errors import InvalidInput, StoreError, Unavailable
from codeactions_core.execution.sandbox import CLEAN_PATH
from codeactions_core.model import Code
from codeactions_core.settings import Settings
from codeactions_core.store import LibRepository

log = logging.getLogger(__name__)

LANGUAGE = "python"
OUTPUT_CAP = 64 * 1024
ERROR_CAP = 300
LOCK_POLL_SECONDS = 0.1
NOT_INSTALLED = frozenset({"bin"})
"""Staged entries never moved into the libs directory (console scripts: useless in the sandbox)."""

DISTRIBUTIONS: Mapping[str, str] = {
    # Well-known import names whose distribution on the package index is named
    # otherwise; any other import name is installed as the distribution of that name.
    "attr": "attrs",
    "bs4": "beautifulsoup4",
    "Crypto": "pycryptodome",
    "cv2": "opencv-python-headless",
    "dateutil": "python-dateutil",
    "dns": "dnspython",
    "docx": "python-docx",
    "dotenv": "python-dotenv",
    "fitz": "PyMuPDF",
    "git": "GitPython",
    "googleapiclient": "google-api-python-client",
    "jose": "python-jose",
    "jwt": "PyJWT",
    "magic": "python-magic",
    "multipart": "python-multipart",
    "nacl": "PyNaCl",
    "OpenSSL": "pyOpenSSL",
    "PIL": "pillow",
    "pkg_resources": "setuptools",
    "pptx": "python-pptx",
    "psycopg2": "psycopg2-binary",
    "serial": "pyserial",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
    "slugify": "python-slugify",
    "socks": "PySocks",
    "telegram": "python-telegram-bot",
    "websocket": "websocket-client",
    "yaml": "PyYAML",
    "zmq": "pyzmq",
}

LOADERS = (
    (ExtensionFileLoader, EXTENSION_SUFFIXES),
    (SourceFileLoader, SOURCE_SUFFIXES),
    (SourcelessFileLoader, BYTECODE_SUFFIXES),
)
MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PIP_ERROR = re.compile(r"^\s*error:\s*(\S.*)$", re.IGNORECASE | re.MULTILINE)


def libs_dir(settings: Settings) -> Path:
    """Where Python libraries are installed (the Python runtime's ``libs_dir``)."""
    return Path(settings.data_dir).resolve() / "libs" / LANGUAGE


def imports_of(source: str) -> list[str]:
    """The top-level modules a source imports that are not standard library, sorted.

    Absolute imports anywhere in the source count (inside functions too);
    relative imports do not. A source that does not parse has none.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # MemoryError: parser stack
        return []
    names = {name for node in ast.walk(tree) for name in imported_modules(node)}
    return sorted(name for name in names if not is_standard(name))


def imported_modules(node: ast.AST) -> list[str]:
    """Top-level module names one node imports absolutely."""
    if isinstance(node, ast.Import):
        return [alias.name.partition(".")[0] for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module.partition(".")[0]]
    return []


def is_standard(name: str) -> bool:
    return name in sys.stdlib_module_names or name in sys.builtin_module_names


def distribution_of(name: str) -> str:
    """The distribution to install for an import name."""
    return DISTRIBUTIONS.get(name, name)


def normalize(name: str) -> str:
    """A distribution name as the package index compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def importable(name: str, directory: Path) -> bool:
    """Whether ``import name`` finds a module or package in ``directory`` (nothing is imported)."""
    return FileFinder(str(directory), *LOADERS).find_spec(name) is not None


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
            list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
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
        sys.executable, "-I", "-m", "pip", "install",
        "--isolated", "--no-input", "--disable-pip-version-check", "--no-cache-dir",
        "--progress-bar", "off", "--no-warn-script-location", "--root-user-action", "ignore",
        "--only-binary=:all:", "--target", str(target),
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
        raise InvalidInput(f"preset {path.name}: every line must pin one version (name==version), "
                           f"not {loose[0]!r}")
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
        return any([merge_entry(child, destination / child.name, left_out) for child in children])
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


def unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


@dataclass
class InstallReport:
    """What ``install_each`` did with every name it was given."""

    installed: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    """Already importable (installed before, or standard library)."""
    skipped: list[str] = field(default_factory=list)
    """In SKIPLIST: never installed."""
    failed: dict[str, str] = field(default_factory=dict)
    """Name -> why it could not be installed."""


class LibraryService:
    """Records the libraries of Python codes and installs them into the libs directory."""

    def __init__(
        self, settings: Settings, libs: LibRepository | None, *, pip: PipRunner = run_pip
    ) -> None:
        self._libs = libs
        self._pip = pip
        self._directory = libs_dir(settings)
        self._skiplist = frozenset(normalize(term) for term in settings.skiplist)
        self._auto_install = settings.auto_install_libs
        self._timeout = settings.libs_install_timeout

    @property
    def directory(self) -> Path:
        return self._directory

    @staticmethod
    def imports_of(source: str) -> list[str]:
        """The libraries (non-standard top-level imports) of a Python source."""
        return imports_of(source)

    def record(self, code: Code) -> list[str]:
        """Store the libraries of a Python code; their names."""
        if code.language != LANGUAGE:
            return []
        names = imports_of(code.source)
        for name in names:
            self._libs.add(name, LANGUAGE)
        return names

    def record_quietly(self, code: Code) -> list[str]:
        """``record``, logging rather than raising a store failure (the code is saved already)."""
        try:
            return self.record(code)
        except StoreError as exc:
            log.error("could not record the libraries of code %s: %s", code.id, exc.message)
            return []

    def recorded(self) -> list[str]:
        """Names of every recorded Python library."""
        return [lib.name for lib in self._libs.list(LANGUAGE)]

    def skipped(self, name: str) -> bool:
        """Whether SKIPLIST names this library (by import or distribution name)."""
        return bool({normalize(name), normalize(distribution_of(name))} & self._skiplist)

    def missing(self, names: Iterable[str]) -> list[str]:
        """The names not importable from the libs directory (nor standard library)."""
        return [name for name in unique(names) if not self.installed(name)]

    def installed(self, name: str) -> bool:
        return is_standard(name) or importable(name, self._directory)

    def prepare(self, language: str, source: str) -> list[str]:
        """With AUTO_INSTALL_LIBS, install a Python source's missing libraries; those installed."""
        if not self._auto_install or language != LANGUAGE:
            return []
        return self.install(imports_of(source))

    def install(self, names: Iterable[str]) -> list[str]:
        """Install the missing libraries among ``names`` (never SKIPLIST ones); the names installed.

        Raises InvalidInput for the first that cannot be installed.
        """
        report = self.install_each(names, stop_at_failure=True)
        for message in report.failed.values():
            raise InvalidInput(message)
        return report.installed

    def install_each(self, names: Iterable[str], *, stop_at_failure: bool = False) -> InstallReport:
        """Try to install every missing library among ``names``; what became of each."""
        report = InstallReport()
        candidates = [name for name in unique(names) if self._admitted(name, report)]
        report.present = [name for name in candidates if self.installed(name)]
        wanted = [name for name in candidates if name not in report.present]
        if not wanted:
            return report
        require_pip()
        deadline = time.monotonic() + self._timeout
        self._directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        make_readable(self._directory, recursive=False)
        with exclusive_lock(self._directory.with_name(f"{LANGUAGE}.lock"), deadline):
            for name in wanted:
                if self.installed(name):  # by another process, or as a dependency
                    report.present.append(name)
                    continue
                try:
                    self._install_one(name, deadline)
                    report.installed.append(name)
                except InvalidInput as exc:
                    report.failed[name] = exc.message
                    if stop_at_failure:
                        break
        return report

    def sync(self, sources: Iterable[str]) -> list[str]:
        """Record the libraries every given Python source imports (codelibs); their names."""
        names = sorted({name for source in sources for name in imports_of(source)})
        for name in names:
            self._libs.add(name, LANGUAGE)
        return names

    def install_preset(self, name: str) -> list[str]:
        """Install a preset's pinned requirements, wheels only, into the libs directory
        (distributions present keep their files); the requirements."""
        requirements = preset_requirements(preset_file(name))
        require_pip()
        deadline = time.monotonic() + self._timeout
        self._directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        make_readable(self._directory, recursive=False)
        with exclusive_lock(self._directory.with_name(f"{LANGUAGE}.lock"), deadline):
            staging = Path(tempfile.mkdtemp(prefix=".install-", dir=self._directory.parent))
            try:
                listed = staging / "requirements.txt"
                listed.write_text("\n".join(requirements) + "\n")
                target = staging / "target"
                result = self._pip([*pip_install(target), "--no-deps", "-r", str(listed)], staging,
                                   pip_environment(staging), deadline - time.monotonic())
                if result.returncode != 0:
                    log.warning("pip could not install preset %s; its output ends with:\n%s",
                                name, result.output[-4000:])
                    why = ("did not finish within the time allowed (LIBS_INSTALL_TIMEOUT)"
                           if result.returncode is None else essential_error(result.output))
                    raise InvalidInput(f"could not install preset {name!r}: {why}")
                left_out = files_of_present_distributions(target, self._directory)
                moved = move_into(target, self._directory, left_out)
                log.info("installed preset %s: %d entries", name, len(moved))
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return requirements

    def _admitted(self, name: str, report: InstallReport) -> bool:
        """Whether ``name`` may be installed; else noted in the report."""
        if not MODULE_NAME.fullmatch(name):
            report.failed[name] = f"could not install library {name!r}: not a module name"
            return False
        if self.skipped(name):
            log.info("not installing library %r: it is in SKIPLIST", name)
            report.skipped.append(name)
            return False
        return True

    def _install_one(self, name: str, deadline: float) -> None:
        """pip-install one library into a staging directory, then move it into place."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise InvalidInput(
                f"could not install library {describe_library(name)}: "
                f"no time left of the {self._timeout} seconds allowed"
            )
        staging = Path(tempfile.mkdtemp(prefix=".install-", dir=self._directory.parent))
        try:
            target = staging / "target"
            result = self._pip(pip_command(target, distribution_of(name)), staging,
                               pip_environment(staging), remaining)
            self._check_result(name, result, target)
            left_out = files_of_present_distributions(target, self._directory)
            moved = move_into(target, self._directory, left_out)
            log.info("installed library %s: %s", describe_library(name), ", ".join(moved) or "-")
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _check_result(self, name: str, result: PipResult, target: Path) -> None:
        """Raise InvalidInput unless pip succeeded and the library is importable from ``target``."""
        label = describe_library(name)
        if result.returncode is None:
            raise InvalidInput(f"could not install library {label}: "
                               f"pip did not finish within {self._timeout} seconds")
        if result.returncode != 0:
            log.warning("pip could not install library %s; its output ends with:\n%s",
                        label, result.output[-4000:])
            reason = essential_error(result.output).replace(str(self._directory.parent), "<libs>")
            raise InvalidInput(f"could not install library {label}: {reason}")
        if not importable(name, target):
            raise InvalidInput(
                f"could not install library {label}: the distribution "
                f"{distribution_of(name)!r} provides no module named {name!r}"
            )
