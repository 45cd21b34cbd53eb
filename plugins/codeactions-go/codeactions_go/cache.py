"""Compiled programs on disk, by source key, at most ``max_entries`` of them.

A key's entry is either its binary (``<key>``) or its compiler message
(``<key>.error``). Using an entry touches it; adding one removes the least
recently used beyond the bound. New entries are renamed into place
atomically, so several processes may share the directory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ERROR_SUFFIX = ".error"
STALE_SECONDS = 3600.0
"""A file being written (its name starts with a dot) older than this was left by a crash."""


@dataclass(frozen=True)
class Entry:
    """A cached binary, or the message of a source that does not compile."""

    path: Path | None = None
    error: str | None = None


class BinaryCache:
    def __init__(self, directory: Path, max_entries: int) -> None:
        self.directory = directory
        self.max_entries = max_entries

    def lookup(self, key: str) -> Entry | None:
        """The entry of ``key``, touched; ``None`` when there is none."""
        binary = self.directory / key
        with contextlib.suppress(FileNotFoundError):
            touch(binary)
            return Entry(path=binary)
        error = self.directory / (key + ERROR_SUFFIX)
        with contextlib.suppress(FileNotFoundError):
            message = error.read_text(encoding="utf-8")
            touch(error)
            return Entry(error=message)
        return None

    def staging(self) -> Path:
        """Where to write a new binary before ``add_binary`` moves it in place."""
        self.directory.mkdir(parents=True, exist_ok=True)
        return self.directory / f".build-{uuid.uuid4().hex}"

    def add_binary(self, key: str, staged: Path) -> Entry:
        """Move a binary written at ``staging()`` into the cache."""
        staged.chmod(0o755)  # the sandbox user executes it
        return Entry(path=self._install(staged, key))

    def add_error(self, key: str, message: str) -> Entry:
        self.directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=self.directory, prefix=".", delete=False
        ) as file:
            file.write(message)
        self._install(Path(file.name), key + ERROR_SUFFIX)
        return Entry(error=message)

    def entries(self) -> list[Path]:
        """Every entry, least recently used first."""
        return [path for _, path in sorted(self._listing(staged=False))]

    def _install(self, source: Path, name: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / name
        os.replace(source, target)
        touch(target)  # the newest entry, whatever its build time
        self._evict()
        return target

    def _evict(self) -> None:
        entries = self.entries()
        stale = time.time_ns() - int(STALE_SECONDS * 1e9)
        leftovers = [path for mtime, path in self._listing(staged=True) if mtime < stale]
        for path in entries[: max(0, len(entries) - self.max_entries)] + leftovers:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _listing(self, *, staged: bool) -> list[tuple[int, Path]]:
        """(mtime, path) of the entries, or of the files being written (dot names)."""
        found = []
        with contextlib.suppress(FileNotFoundError), os.scandir(self.directory) as listing:
            for item in listing:
                if item.name.startswith(".") == staged:
                    with contextlib.suppress(FileNotFoundError):
                        found.append((item.stat().st_mtime_ns, Path(item.path)))
        return found


def touch(path: Path) -> None:
    """Mark as used now, to the nanosecond (the file system's own clock ticks coarsely)."""
    now = time.time_ns()
    os.utime(path, ns=(now, now))
