"""A private redis-server for fault tests (killed, frozen, restarted at will; never the
shared one): no persistence, loopback only, on a free port."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from codeactions_core.testing.server import free_port

START_DEADLINE = 10.0


def available() -> bool:
    return shutil.which("redis-server") is not None


@dataclass
class PrivateRedis:
    root: Path
    port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls) -> PrivateRedis:
        server = cls(Path(tempfile.mkdtemp(prefix="codeactions-redis-")), free_port())
        server.resume()
        return server

    def resume(self) -> None:
        """Start (again, on the same port) and wait until it answers PING."""
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + START_DEADLINE
        while True:
            try:
                if client.ping():
                    return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # polling while it starts, not synchronisation
            finally:
                client.close()

    def kill(self) -> None:
        """SIGKILL: down, connections refused."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def freeze(self) -> None:
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)

    def destroy(self) -> None:
        self.thaw()
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)
