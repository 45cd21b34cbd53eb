"""Making and removing cgroups: the seam for a fake cgroupfs in tests (plain directories do not
create interface files)."""

from __future__ import annotations

import errno
import os
import time

from .files import kill_members

REMOVE_TIMEOUT = 3.0


class Groups:
    """Makes and removes groups below a directory descriptor."""

    def make(self, dir_fd: int, name: str) -> None:
        """mkdir a group (it may exist already)."""
        try:
            os.mkdir(name, dir_fd=dir_fd)
        except FileExistsError:
            pass

    def remove(self, dir_fd: int, name: str) -> bool:
        """rmdir a group; True when it is gone, False while processes keep it busy (other
        errors raise)."""
        try:
            os.rmdir(name, dir_fd=dir_fd)
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                return False
            raise
        return True

    def kill_and_remove(self, dir_fd: int, names: list[str]) -> None:
        """Kill every process in the groups ``names`` under ``dir_fd`` and remove the groups."""
        deadline = time.monotonic() + REMOVE_TIMEOUT
        pending = list(names)
        while pending:
            for name in pending:
                kill_members(dir_fd, name)
            pending = [name for name in pending if not self.remove(dir_fd, name)]
            if not pending or time.monotonic() > deadline:
                return
            # killed processes take a moment to leave (polling, bounded by the deadline)
            time.sleep(0.01)
