"""Who sandboxed processes run as: one uid per live sandbox, claimed machine-wide.

Zygote side, stdlib only (imported by ``zygote.py`` as a top-level module)."""

from __future__ import annotations

import socket
from dataclasses import dataclass

UID_CLAIM = "codeactions-sandbox-uid-{uid}"
"""Abstract socket name a zygote binds to hold a uid: machine-wide (per network namespace),
atomic, and released by the kernel when the zygote dies."""


@dataclass
class Identity:
    """Who a sandboxed process runs as."""

    uid: int
    gid: int
    own: bool
    """A uid of its own: no other sandbox runs as it meanwhile (from the configured range)."""
    claim: socket.socket | None = None


class Identities:
    """One uid per live sandbox from [base, base + count), each claimed machine-wide."""

    def __init__(self, base: int, count: int, fallback: tuple[int, int]) -> None:
        self.base, self.count, self.fallback = base, count, fallback
        self._free: list[Identity] = []
        self._next = 0

    def acquire(self) -> Identity:
        if self._free:
            return self._free.pop()
        for _ in range(self.count):
            index, self._next = self._next, (self._next + 1) % self.count
            uid = self.base + index
            claim = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                claim.bind("\0" + UID_CLAIM.format(uid=uid))
            except OSError:
                claim.close()
                continue
            return Identity(uid, uid, True, claim)
        return Identity(*self.fallback, own=False)

    def release(self, identity: Identity) -> None:
        self._free.append(identity)
