"""The libraries use case: record what Python codes import, install what is missing."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from codeactions_core.errors import InvalidInput, StoreError
from codeactions_core.libs import LANGUAGE, libs_dir
from codeactions_core.libs.imports import (
    MODULE_NAME,
    distribution_of,
    importable,
    imports_of,
    is_standard,
    normalize,
)
from codeactions_core.libs.installer import (
    PipResult,
    PipRunner,
    describe_library,
    essential_error,
    exclusive_lock,
    files_of_present_distributions,
    make_readable,
    move_into,
    pip_command,
    pip_environment,
    pip_install,
    preset_file,
    preset_requirements,
    require_pip,
    run_pip,
)
from codeactions_core.model import Code
from codeactions_core.settings import Settings
from codeactions_core.store import LibRepository

log = logging.getLogger(__name__)


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
                result = self._pip(
                    [*pip_install(target), "--no-deps", "-r", str(listed)],
                    staging,
                    pip_environment(staging),
                    deadline - time.monotonic(),
                )
                if result.returncode != 0:
                    log.warning(
                        "pip could not install preset %s; its output ends with:\n%s",
                        name,
                        result.output[-4000:],
                    )
                    why = (
                        "did not finish within the time allowed (LIBS_INSTALL_TIMEOUT)"
                        if result.returncode is None
                        else essential_error(result.output)
                    )
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
            result = self._pip(
                pip_command(target, distribution_of(name)),
                staging,
                pip_environment(staging),
                remaining,
            )
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
            raise InvalidInput(
                f"could not install library {label}: "
                f"pip did not finish within {self._timeout} seconds"
            )
        if result.returncode != 0:
            log.warning(
                "pip could not install library %s; its output ends with:\n%s",
                label,
                result.output[-4000:],
            )
            reason = essential_error(result.output).replace(str(self._directory.parent), "<libs>")
            raise InvalidInput(f"could not install library {label}: {reason}")
        if not importable(name, target):
            raise InvalidInput(
                f"could not install library {label}: the distribution "
                f"{distribution_of(name)!r} provides no module named {name!r}"
            )
