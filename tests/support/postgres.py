"""A private PostgreSQL server for fault tests: started in a temporary directory on a free
port, and stopped, crashed, frozen and thawed at will (never the shared one).

``PrivatePostgres.start()`` runs ``initdb`` and ``pg_ctl`` (as the ``postgres`` user when
the tests run as root, which PostgreSQL refuses). ``wal_writer_delay`` is at its maximum
(10 s) so that asynchronously committed transactions stay in memory, unflushed, for a
long time: a crash then loses them, as a real crash may.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeactions_core.testing.server import free_port
from tests.support.processes import children

START_DEADLINE = 30.0
SYSTEM_USER = "postgres"


def postgres_bin(name: str) -> str:
    """A PostgreSQL program: on PATH, else the newest under /usr/lib/postgresql."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not candidates:
        raise FileNotFoundError(f"{name} (PostgreSQL server programs) not found")
    return str(candidates[-1])


def available() -> bool:
    try:
        postgres_bin("initdb")
        postgres_bin("pg_ctl")
    except FileNotFoundError:
        return False
    return os.geteuid() != 0 or _system_user() is not None


def _system_user() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        return None


@dataclass
class PrivatePostgres:
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    def uri(self, database: str = "codeactions") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls) -> PrivatePostgres:
        root = Path(tempfile.mkdtemp(prefix="codeactions-pg-"))
        server = cls(root, free_port())
        user = _system_user() if os.geteuid() == 0 else None
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)
        server._run(
            postgres_bin("initdb"),
            "-D",
            str(server.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        with open(server.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {server.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{root}'\nfsync = off\n"
                "wal_writer_delay = 10000ms\nmax_connections = 60\nlogging_collector = off\n"
            )
        server.resume()
        return server

    def resume(self) -> None:
        """Start (again) and wait until it accepts connections."""
        self._run(
            postgres_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            str(int(START_DEADLINE)),
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast``: a clean shutdown; ``immediate``: a crash (no checkpoint, unflushed WAL
        lost)."""
        self.thaw()
        self._run(postgres_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def crash(self) -> None:
        self.stop("immediate")

    def pids(self) -> list[int]:
        """The postmaster and all its children."""
        try:
            main = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        return [main, *children(main)]

    def freeze(self) -> None:
        """SIGSTOP every process of the server: connections stay open, nothing answers."""
        for pid in self.pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop("immediate")
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, *command: str) -> None:
        if os.geteuid() == 0:
            command = ("runuser", "-u", SYSTEM_USER, "--", *command)
        subprocess.run(
            command, check=True, capture_output=True, timeout=START_DEADLINE + 30, cwd=self.root
        )


def wait_until(condition: Callable[[], Any], deadline: float, interval: float = 0.05) -> Any:
    """``condition()`` once truthy, polling until ``deadline`` seconds pass; else its last value."""
    give_up = time.monotonic() + deadline
    while True:
        value = condition()
        if value or time.monotonic() > give_up:
            return value
        time.sleep(interval)  # polling, not synchronisation
