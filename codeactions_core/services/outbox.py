"""The local outbox: a run's final write, kept on disk while the database is unreachable.

When a code has run but its record cannot be written (the database is down or
partitioned), the caller still gets the code's answer and the write waits here: one
SQLite file per process under ``<DATA_DIR>/outbox``, capped in size (RUN_OUTBOX_MB). The
process replays it in order as soon as the database answers again; a file whose process
died (its ``.lock`` is free) is adopted and replayed by the next process that looks, e.g.
the restarted server. A replayed write is idempotent (the run's final update) apart from a
crash between writing an entry's log lines and marking them written, which may store them
twice.
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeactions_core.errors import CodeActionsError, StoreError

log = logging.getLogger(__name__)

SCHEMA = """CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    body TEXT NOT NULL,
    logs_done INTEGER NOT NULL DEFAULT 0
)"""


class OutboxFull(CodeActionsError):
    """The outbox reached RUN_OUTBOX_MB (or is disabled): the write cannot wait there."""


@dataclass
class PendingWrite:
    """A run's final write: its state and the log lines still to store."""

    run_id: str
    code_id: str
    status: str
    result: str
    extra: dict[str, Any]
    logs: list[tuple[str, str]] = field(default_factory=list)
    """(type, content) of each log line, in order; empty once written."""
    run: dict[str, Any] = field(default_factory=dict)
    """The rest of the run (params, body, headers, created_at...), to insert it again when
    the database lost its first write too (a crash before it was flushed)."""
    seq: int = 0


Replay = Callable[[PendingWrite, Callable[[dict[str, Any]], None]], None]
"""Writes one entry; calls its second argument with the run's extra once the log lines are
stored (so a retry does not store them again). Raises StoreError while the database is down."""


class Outbox:
    """This process's outbox file, created on first use, and the adoption of dead ones'."""

    def __init__(self, directory: Path, max_bytes: int, name: str) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._name = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._lock_file: Any = None
        self._pid = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @property
    def path(self) -> Path:
        return self.directory / f"{self._name}.sqlite"

    def add(self, write: PendingWrite) -> None:
        """Keep ``write`` until ``replay`` stores it; OutboxFull when it cannot wait here."""
        if not self.enabled:
            raise OutboxFull("the outbox is disabled (RUN_OUTBOX_MB=0)")
        body = json.dumps(
            {
                "code_id": write.code_id,
                "status": write.status,
                "result": write.result,
                "extra": write.extra,
                "logs": write.logs,
                "run": write.run,
            }
        )
        with self._lock:
            try:
                connection = self._open()
                if self._size() + len(body) > self.max_bytes:
                    raise OutboxFull(f"the outbox is full ({self.max_bytes // (1024 * 1024)} MiB)")
                with connection:
                    connection.execute(
                        "INSERT INTO entries (run_id, body) VALUES (?, ?)", (write.run_id, body)
                    )
            except (OSError, sqlite3.Error) as exc:  # e.g. a read-only or full data directory
                raise OutboxFull(
                    f"the outbox in {self.directory} cannot be written: {exc}"
                ) from exc

    def pending(self) -> int:
        """Entries of this process still waiting."""
        with self._lock:
            if self._connection is None or self._pid != os.getpid():
                return 0
            return self._connection.execute("SELECT COUNT(*) FROM entries").fetchone()[0]

    def holds(self, run_id: str) -> bool:
        """Whether this process's outbox keeps a final write of ``run_id`` (the run has ended;
        its record waits for the database)."""
        with self._lock:
            if self._connection is None or self._pid != os.getpid():
                return False
            found = self._connection.execute(
                "SELECT 1 FROM entries WHERE run_id = ? LIMIT 1", (run_id,)
            ).fetchone()
            return found is not None

    def replay(self, write: Replay) -> int:
        """Store this process's entries, then those of dead processes, in order; stop at the
        first that finds the database unreachable. How many were stored."""
        stored = 0
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                stored += replay_entries(self._connection, write)
        for path in sorted(self.directory.glob("*.sqlite")) if self.directory.is_dir() else ():
            if path != self.path:
                stored += self._adopt(path, write)
        return stored

    def close(self) -> None:
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.close()
                self._lock_file.close()
            self._connection = self._lock_file = None

    def _open(self) -> sqlite3.Connection:
        if self._connection is not None and self._pid == os.getpid():
            return self._connection
        self.directory.mkdir(parents=True, exist_ok=True)
        lock_file = open(lock_path(self.path), "a+")  # noqa: SIM115 - held while the process lives
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        connection.execute("PRAGMA journal_mode=wal")
        connection.execute(SCHEMA)
        self._connection, self._lock_file, self._pid = connection, lock_file, os.getpid()
        return connection

    def _size(self) -> int:
        return sum(
            path.stat().st_size
            for path in (self.path, self.path.with_name(self.path.name + "-wal"))
            if path.exists()
        )

    def _adopt(self, path: Path, write: Replay) -> int:
        """Replay the outbox of a process that died (its lock is free); delete it when done."""
        with open(lock_path(path), "a+") as lock_file:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # its process is alive and replays it itself
            with closing(sqlite3.connect(path, isolation_level=None)) as connection:
                connection.execute(SCHEMA)
                stored = replay_entries(connection, write)
                left = connection.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
            if not left:
                for leftover in (
                    path,
                    path.with_name(path.name + "-wal"),
                    path.with_name(path.name + "-shm"),
                    lock_path(path),
                ):
                    leftover.unlink(missing_ok=True)
            if stored:
                log.info("replayed %d run records a stopped process left in %s", stored, path.name)
            return stored


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def entries(connection: sqlite3.Connection) -> Iterator[tuple[PendingWrite, bool]]:
    rows = connection.execute("SELECT seq, run_id, body, logs_done FROM entries ORDER BY seq")
    for seq, run_id, body, logs_done in rows.fetchall():
        data = json.loads(body)
        pending = PendingWrite(
            run_id=run_id,
            code_id=data["code_id"],
            status=data["status"],
            result=data["result"],
            extra=data["extra"],
            logs=[] if logs_done else [tuple(line) for line in data["logs"]],
            run=data.get("run", {}),
            seq=seq,
        )
        yield pending, bool(logs_done)


def mark_logs_stored(
    connection: sqlite3.Connection, pending: PendingWrite, extra: dict[str, Any]
) -> None:
    """The entry's log lines are stored: keep only the run's write (with its new extra)."""
    body = json.dumps(
        {
            "code_id": pending.code_id,
            "status": pending.status,
            "result": pending.result,
            "extra": extra,
            "logs": [],
            "run": pending.run,
        }
    )
    with connection:
        connection.execute(
            "UPDATE entries SET logs_done = 1, body = ? WHERE seq = ?", (body, pending.seq)
        )


def replay_entries(connection: sqlite3.Connection, write: Replay) -> int:
    stored = 0
    for pending, _ in entries(connection):
        try:
            write(pending, functools.partial(mark_logs_stored, connection, pending))
        except StoreError:
            return stored  # still unreachable: keep the order, try again later
        except CodeActionsError as exc:  # the database refuses this one for good
            log.error("dropping the outbox record of run %s: %s", pending.run_id, exc.message)
        with connection:
            connection.execute("DELETE FROM entries WHERE seq = ?", (pending.seq,))
        stored += 1
    return stored
