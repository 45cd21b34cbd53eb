"""A DNS relay, for resolvers runs cannot reach."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

RELAY_INFLIGHT = 32
RELAY_TIMEOUT = 2.0


class DnsRelay:
    """Answers the runs' DNS queries (UDP and TCP, port 53) at one address of the router
    namespace by asking the host's resolvers from this process: for resolvers a run cannot
    reach itself, such as 127.0.0.53 (systemd-resolved) or 127.0.0.11 (Docker's)."""

    def __init__(self, upstream: list[str], udp: socket.socket, tcp: socket.socket) -> None:
        self.upstream = upstream
        self.udp, self.tcp = udp, tcp
        self._stopping = threading.Event()
        self._inflight = threading.BoundedSemaphore(RELAY_INFLIGHT)
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Serve on a thread of its own (started from a thread in the host namespace)."""
        self._pool = ThreadPoolExecutor(RELAY_INFLIGHT, thread_name_prefix="codeactions-dns")
        self._thread = threading.Thread(
            target=self._serve, name="codeactions-dns-relay", daemon=True
        )
        self._thread.start()

    def _serve(self) -> None:
        poller = select.poll()
        poller.register(self.udp.fileno(), select.POLLIN)
        poller.register(self.tcp.fileno(), select.POLLIN)
        while not self._stopping.is_set():
            for fd, _ in poller.poll(250):
                try:
                    if fd == self.udp.fileno():
                        query, client = self.udp.recvfrom(65535)
                        self._submit(self._answer_udp, query, client)
                    else:
                        connection, _ = self.tcp.accept()
                        if not self._submit(self._answer_tcp, connection):
                            connection.close()
                except OSError:
                    continue

    def _submit(self, work: Callable[..., None], *args: Any) -> bool:
        """Run ``work`` unless RELAY_INFLIGHT queries are already being answered (a flood:
        dropped)."""
        if self._pool is None or not self._inflight.acquire(blocking=False):
            return False
        try:
            self._pool.submit(self._release_after, work, *args)
        except RuntimeError:
            self._inflight.release()
            return False
        return True

    def _release_after(self, work: Callable[..., None], *args: Any) -> None:
        try:
            work(*args)
        except OSError:
            pass
        finally:
            self._inflight.release()

    def _answer_udp(self, query: bytes, client: Any) -> None:
        for server in self.upstream:
            family = socket.AF_INET6 if ":" in server else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as upstream:
                upstream.settimeout(RELAY_TIMEOUT)
                try:
                    upstream.connect((server, 53))
                    upstream.send(query)
                    reply = upstream.recv(65535)
                except OSError:
                    continue
            if reply[:2] == query[:2]:
                self.udp.sendto(reply, client)
                return

    def _answer_tcp(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(RELAY_TIMEOUT)
            length = read_exactly(connection, 2)
            query = read_exactly(connection, int.from_bytes(length, "big"))
            for server in self.upstream:
                try:
                    with socket.create_connection((server, 53), timeout=RELAY_TIMEOUT) as upstream:
                        upstream.sendall(length + query)
                        size = read_exactly(upstream, 2)
                        reply = read_exactly(upstream, int.from_bytes(size, "big"))
                except OSError:
                    continue
                connection.sendall(size + reply)
                return

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self.udp.close()
        self.tcp.close()


def read_exactly(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed early")
        data += chunk
    return data
