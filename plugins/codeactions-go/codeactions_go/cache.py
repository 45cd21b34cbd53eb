"""Compiled programs on disk, by source key: at most ``max_entries`` of them and
``max_bytes`` together.

A key's entry is either its binary (``<key>``) or its compiler message
(``<key>.error``). Using an entry touches it; adding one removes the least
recently used beyond either bound (never the entry just added: one binary
larger than the whole budget stays alone until the next one arrives). New
entries are renamed into place atomically, so several processes may share
the directory.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
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
    def __init__(self, directory: Path, max_entries: int, max_bytes: int | None = None) -> None:
        self.directory = directory
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        """``None``: no byte cap."""

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
        """A fresh name in the cache's directory for a file ``add_binary`` moves in place."""
        self.directory.mkdir(parents=True, exist_ok=True)
        return self.directory / f".build-{uuid.uuid4().hex}"

    def adopt(self, output: Path) -> Path | None:
        """Take a build's output into the cache's directory, owned by this process's user;
        ``None`` unless it is a regular file (a sandboxed build wrote it)."""
        try:
            if not stat.S_ISREG(os.lstat(output).st_mode):
                return None
        except FileNotFoundError:
            return None
        staged = self.staging()
        try:
            os.replace(output, staged)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            shutil.copyfile(output, staged, follow_symlinks=False)
        if not stat.S_ISREG(os.lstat(staged).st_mode):  # replaced meanwhile
            staged.unlink()
            return None
        if os.geteuid() == 0:
            os.lchown(staged, os.getuid(), os.getgid())
        return staged

    def add_binary(self, key: str, staged: Path) -> Entry:
        """Move a binary written at ``staging()`` (or adopted) into the cache."""
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
        return [path for _, _, path in sorted(self._listing(staged=False))]

    def total_bytes(self) -> int:
        """What the entries take on disk together."""
        return sum(size for _, size, _ in self._listing(staged=False))

    def _install(self, source: Path, name: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / name
        os.replace(source, target)
        touch(target)  # the newest entry, whatever its build time
        self._evict(keep=target)
        return target

    def _evict(self, keep: Path) -> None:
        """Remove the least recently used entries beyond the count or the byte cap, and
        the leftovers of crashed builds."""
        listing = sorted(self._listing(staged=False))
        count, total = len(listing), sum(size for _, size, _ in listing)
        doomed = []
        for _, size, path in listing:
            over_bytes = self.max_bytes is not None and total > self.max_bytes
            if count <= self.max_entries and not over_bytes:
                break
            if path == keep:
                continue
            doomed.append(path)
            count, total = count - 1, total - size
        stale = time.time_ns() - int(STALE_SECONDS * 1e9)
        doomed += [path for mtime, _, path in self._listing(staged=True) if mtime < stale]
        for path in doomed:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _listing(self, *, staged: bool) -> list[tuple[int, int, Path]]:
        """(mtime, size, path) of the entries, or of the files being written (dot names)."""
        found = []
        with contextlib.suppress(FileNotFoundError), os.scandir(self.directory) as listing:
            for item in listing:
                if item.name.startswith(".") == staged:
                    with contextlib.suppress(FileNotFoundError):
                        info = item.stat(follow_symlinks=False)
                        found.append((info.st_mtime_ns, info.st_size, Path(item.path)))
        return found


def trim_directory(directory: Path, max_bytes: int, *, keep_newer_than: float = 0.0) -> int:
    """Remove the least recently modified files under ``directory`` until the rest take at
    most ``max_bytes``, sparing those modified in the last ``keep_newer_than`` seconds
    (in use by a build); the bytes removed. For Go's own build cache (GOCACHE), whose
    every file is a cache entry: a missing one is a miss, built again."""
    files: list[tuple[int, int, str]] = []
    for folder, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(folder, name)
            with contextlib.suppress(FileNotFoundError):
                info = os.lstat(path)
                if stat.S_ISREG(info.st_mode):
                    files.append((info.st_mtime_ns, info.st_size, path))
    total = sum(size for _, size, _ in files)
    spared = time.time_ns() - int(keep_newer_than * 1e9)
    removed = 0
    for mtime, size, path in sorted(files):
        if total - removed <= max_bytes or mtime >= spared:
            break
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            removed += size
    return removed


def touch(path: Path) -> None:
    """Mark as used now, to the nanosecond (the file system's own clock ticks coarsely)."""
    now = time.time_ns()
    os.utime(path, ns=(now, now))
