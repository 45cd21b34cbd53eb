"""Which ``serve`` this is: an id kept in the data directory, so that a restarted server
knows the runs its predecessor left unfinished are its own, and fails them at start.

``serve`` takes an exclusive lock on ``<DATA_DIR>/server-instance`` for as long as it runs.
When the file exists and the lock is free, the previous server using this data directory
is gone: its runs (owners ``<id>:...``) can be failed at once. When another live ``serve``
holds the lock (two servers on one data directory), this one takes a fresh id and fails
nothing at start; the lease rule still fails a dead server's runs within seconds.
"""

from __future__ import annotations

import fcntl
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

FILE_NAME = "server-instance"


@dataclass
class ServerInstance:
    id: str
    restarted: bool
    """A previous server with this id existed and no longer runs: its runs are ours to fail."""
    handle: IO[str] | None = None
    """The locked file, held open while the server runs."""

    @property
    def owner_prefix(self) -> str:
        return f"{self.id}:"

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def claim_instance(data_dir: str | Path) -> ServerInstance:
    """This server's instance id (see the module's docstring)."""
    path = Path(data_dir) / FILE_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 - held open (locked) while the server runs
    except OSError as exc:
        log.warning(
            "no server instance file in %s (%s): runs a previous server left are "
            "failed once their lease expires",
            path.parent,
            exc,
        )
        return ServerInstance(uuid.uuid4().hex[:12], restarted=False)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        log.warning(
            "another server uses the data directory %s: this one takes its own instance id",
            path.parent,
        )
        return ServerInstance(uuid.uuid4().hex[:12], restarted=False)
    handle.seek(0)
    known = handle.read().strip()
    if known:
        return ServerInstance(known, restarted=True, handle=handle)
    instance = uuid.uuid4().hex[:12]
    handle.truncate(0)
    handle.write(instance + "\n")
    handle.flush()
    return ServerInstance(instance, restarted=False, handle=handle)
