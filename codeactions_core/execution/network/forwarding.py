"""``net.ipv4.ip_forward`` of the host, shared by every server process on it."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path

from codeactions_core.execution.network.namespaces import read_sysctl, write_sysctl


class Forwarding:
    """``net.ipv4.ip_forward`` of the host namespace: on while any server process needs it,
    restored by the last one; what it was before is kept in a state file (survives a crash)."""

    def __init__(self, state_dir: str, netns: int) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / f"forwarding-{netns}.json"

    def _locked(self) -> int:
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def enable(self) -> bool:
        """Switch forwarding on; whether it was off before any of us switched it on."""
        fd = self._locked()
        try:
            try:
                before = json.loads(self.path.read_text())["before"]
            except (OSError, ValueError, KeyError):
                before = read_sysctl("net.ipv4.ip_forward")
                self.path.write_text(json.dumps({"before": before}))
            if read_sysctl("net.ipv4.ip_forward") != "1":
                write_sysctl("net.ipv4.ip_forward", "1")
            return before == "0"
        finally:
            os.close(fd)

    def release(self, others_alive: Callable[[], bool]) -> None:
        """The last user restores what it was (call after removing this process's uplink)."""
        fd = self._locked()
        try:
            if others_alive():
                return
            try:
                before = json.loads(self.path.read_text())["before"]
            except (OSError, ValueError, KeyError):
                return
            write_sysctl("net.ipv4.ip_forward", before)
            self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)
