"""Length-prefixed JSON messages over Unix sockets, optionally carrying file descriptors.

Shared by the server and the zygote (which imports it as a top-level module),
so it must not import from the ``codeactions_core`` package.
"""

from __future__ import annotations

import array
import json
import select
import socket
import struct
import time
from typing import Any

HEADER = struct.Struct("!I")
MAX_MESSAGE = 64 * 1024 * 1024


class WireError(Exception):
    """The peer sent something that is not a message, or went away mid-message."""


def send(sock: socket.socket, message: Any, fds: tuple[int, ...] = ()) -> None:
    payload = json.dumps(message, separators=(",", ":")).encode()
    if len(payload) > MAX_MESSAGE:
        raise WireError(f"message of {len(payload)} bytes is too large")
    data = HEADER.pack(len(payload)) + payload
    if fds:
        sent = sock.sendmsg(
            [data[: HEADER.size]], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
        )
        data = data[sent:]
    sock.sendall(data)


def receive(
    sock: socket.socket, *, max_fds: int = 0, deadline: float | None = None
) -> tuple[Any, list[int]] | None:
    """The next message and any file descriptors sent with it; ``None`` at a clean EOF.

    ``deadline`` is a ``time.monotonic()`` instant; passing it raises TimeoutError.
    """
    fds: list[int] = []
    header = b""
    while len(header) < HEADER.size:
        _wait_readable(sock, deadline)
        if max_fds and not header:
            chunk, ancillary, _, _ = sock.recvmsg(
                HEADER.size, socket.CMSG_LEN(max_fds * array.array("i").itemsize)
            )
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    received = array.array("i")
                    received.frombytes(payload[: len(payload) - len(payload) % received.itemsize])
                    fds.extend(received)
        else:
            chunk = sock.recv(HEADER.size - len(header))
        if not chunk:
            if header:
                raise WireError("connection closed inside a message header")
            return None
        header += chunk
    (size,) = HEADER.unpack(header)
    if size > MAX_MESSAGE:
        raise WireError(f"announced message of {size} bytes is too large")
    body = bytearray()
    while len(body) < size:
        _wait_readable(sock, deadline)
        chunk = sock.recv(min(size - len(body), 1 << 20))
        if not chunk:
            raise WireError("connection closed inside a message")
        body += chunk
    try:
        return json.loads(body), fds
    except ValueError as exc:
        raise WireError(f"not a JSON message: {exc}") from None


def _wait_readable(sock: socket.socket, deadline: float | None) -> None:
    if deadline is None:
        return
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not select.select([sock], [], [], remaining)[0]:
        raise TimeoutError("no message before the deadline")
