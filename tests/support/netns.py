"""A test network that never reaches off this machine: a "server" namespace and a "world" one.

``cat-srv-<tag>`` plays the host a server runs on: address ``198.51.100.2`` (and
``fd00:1::2``), its default routes via the world. ``cat-net-<tag>`` plays the
world: ``198.51.100.1`` and, on its loopback, listeners standing in for a public
host (``198.51.100.10``, declared allowed by the tests), cloud metadata
(``169.254.169.254``, ``fd00:ec2::254``), private and CGNAT ranges, a
documentation address and a name server (``10.53.0.53``) that answers
``public.test``. Every TCP connection the world accepts is logged, so a
policy bug shows up as a line in that log. Every packet stays inside namespaces
the test created; ``remove()`` deletes them (and their veths with them).

Run as ``python -m tests.support.netns world LOG`` inside the world
namespace to serve the listeners.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from codeactions_core.settings import inherited_environment
from tests.support import ROOT

SERVER_ADDRESS = "198.51.100.2"
WORLD_ADDRESS = "198.51.100.1"
PUBLIC = "198.51.100.10"
DNS = "10.53.0.53"
DNS_NAME = "public.test"
DOCUMENTATION = "203.0.113.50"
SERVER_ADDRESS6 = "fd00:1::2"
WORLD_ADDRESS6 = "fd00:1::1"
METADATA6 = "fd00:ec2::254"
DENIED_TARGETS = {
    "metadata": "169.254.169.254",
    "rfc1918_10": "10.77.0.1",
    "rfc1918_172": "172.16.77.1",
    "rfc1918_192": "192.168.77.1",
    "cgnat": "100.64.77.1",
    "documentation": DOCUMENTATION,
}
TARGET_PORTS = (80, 8080, 8081)
TOPOLOGY_PREFIXES = ("cat-srv-", "cat-net-")
_INHERITED = inherited_environment()
TOOL_ENV = {**_INHERITED, "PATH": _INHERITED.get("PATH", "") + ":/usr/sbin:/sbin"}
"""The environment of the `ip` and helper processes: ours, with the system folders on PATH."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip`` (from /usr/sbin or /sbin too)."""
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, env=TOOL_ENV)


def namespaces() -> list[str]:
    """The names ``ip netns list`` shows."""
    return [line.split()[0] for line in ip("netns", "list").stdout.splitlines() if line.strip()]


def nft_tables(netns: str | None = None) -> list[str]:
    """``nft list tables`` (of a named namespace, or this one) as lines."""
    prefix = ["ip", "netns", "exec", netns] if netns else []
    result = subprocess.run(
        [*prefix, "nft", "list", "tables"],
        capture_output=True,
        text=True,
        check=False,
        env=TOOL_ENV,
    )
    return [line for line in result.stdout.splitlines() if line.strip()]


@dataclass
class Topology:
    """The two namespaces of one test, and the world's listeners."""

    directory: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    world: subprocess.Popen[bytes] | None = None

    @property
    def server(self) -> str:
        return f"cat-srv-{self.tag}"

    @property
    def network(self) -> str:
        return f"cat-net-{self.tag}"

    @property
    def world_log(self) -> Path:
        return self.directory / "world.log"

    def create(self, subnet: str = "10.254.0.0/16") -> None:
        """Both namespaces, their link, addresses and routes, and the world's listeners."""
        srv, net = self.server, self.network
        ip("netns", "add", srv)
        ip("netns", "add", net)
        ip("-n", srv, "link", "add", "eth0", "type", "veth", "peer", "name", "w0", "netns", net)
        for command in (
            [srv, "link", "set", "lo", "up"],
            [srv, "addr", "add", f"{SERVER_ADDRESS}/24", "dev", "eth0"],
            [srv, "addr", "add", f"{SERVER_ADDRESS6}/64", "dev", "eth0", "nodad"],
            [srv, "link", "set", "eth0", "up"],
            [srv, "route", "add", "default", "via", WORLD_ADDRESS],
            [srv, "-6", "route", "add", "default", "via", WORLD_ADDRESS6],
            [net, "link", "set", "lo", "up"],
            [net, "addr", "add", f"{WORLD_ADDRESS}/24", "dev", "w0"],
            [net, "addr", "add", f"{WORLD_ADDRESS6}/64", "dev", "w0", "nodad"],
            [net, "link", "set", "w0", "up"],
            # An attacker next to the server who knows the sandbox range: inbound tests need it.
            [net, "route", "add", subnet, "via", SERVER_ADDRESS],
        ):
            ip("-n", *command)
        for address in (PUBLIC, DNS, *DENIED_TARGETS.values()):
            ip("-n", net, "addr", "add", f"{address}/32", "dev", "lo")
        ip("-n", net, "addr", "add", f"{METADATA6}/128", "dev", "lo")
        # Whatever the real host does, this "host" does not forward until a sandbox network asks.
        subprocess.run(
            ["ip", "netns", "exec", srv, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward"],
            check=True,
            env=TOOL_ENV,
        )
        self.world_log.write_text("")
        self.world = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                net,
                sys.executable,
                "-m",
                "tests.support.netns",
                "world",
                str(self.world_log),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=TOOL_ENV,
            cwd=ROOT,  # where `tests.support` is importable
        )
        assert self.world.stdout is not None
        line = self.world.stdout.readline().decode()
        if "ready" not in line:
            raise RuntimeError(
                f"the world did not start: {line}{self.world.stdout.read().decode()}"
            )

    def connections(self) -> list[dict]:
        """Every TCP connection the world accepted, in order."""
        return [
            json.loads(line) for line in self.world_log.read_text().splitlines() if line.strip()
        ]

    def remove(self) -> None:
        """Stop the world, delete both namespaces (their veths go with them)."""
        if self.world is not None and self.world.poll() is None:
            self.world.kill()
            self.world.wait()
        for name in (self.server, self.network):
            # Processes still inside (a leaked server) would keep it alive: end them first.
            pids = ip("netns", "pids", name, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            ip("netns", "del", name, check=False)

    def exec_command(self, *argv: str) -> list[str]:
        """A command line that runs ``argv`` inside the server namespace."""
        return ["ip", "netns", "exec", self.server, *argv]


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes; whether it became true."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)  # polling interval, not synchronisation


def netns_connection(netns: str, host: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection made from inside a named namespace (a socket keeps the namespace it was
    made in; the thread that made it, and only it, entered the namespace)."""
    from codeactions_core.execution.network import on_fresh_thread, setns

    def connect() -> socket.socket:
        fd = os.open(f"/run/netns/{netns}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(fd)
        finally:
            os.close(fd)
        return socket.create_connection((host, port), timeout=timeout)

    return on_fresh_thread(connect)


class NetnsHTTPConnection(http.client.HTTPConnection):
    """HTTP to a server inside a named namespace, from a process outside it."""

    def __init__(self, netns: str, host: str, port: int, timeout: float = 60) -> None:
        super().__init__(host, port, timeout=timeout)
        self.netns = netns

    def connect(self) -> None:
        self.sock = netns_connection(self.netns, self.host, self.port, self.timeout)


def netns_request(
    netns: str, port: int, method: str, path: str, body: bytes | None = None, timeout: float = 60
) -> tuple[int, str]:
    """One HTTP request to ``127.0.0.1:port`` inside ``netns``; the status and the text."""
    connection = NetnsHTTPConnection(netns, "127.0.0.1", port, timeout)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


# --- the world (runs inside the world namespace) --------------------------------------------


def dns_answer(query: bytes, names: dict[str, str]) -> bytes:
    """A DNS response to ``query``: one A record for a known name, NXDOMAIN otherwise."""
    ident, flags = query[:2], int.from_bytes(query[2:4], "big")
    position, labels = 12, []
    while query[position]:
        length = query[position]
        labels.append(query[position + 1 : position + 1 + length].decode(errors="replace"))
        position += 1 + length
    question = query[12 : position + 5]
    qtype = int.from_bytes(query[position + 1 : position + 3], "big")
    name = ".".join(labels).lower()
    address = names.get(name)
    recursion = flags & 0x0100
    if address is None:
        return (
            ident
            + (0x8183 | recursion).to_bytes(2, "big")
            + b"\x00\x01\x00\x00\x00\x00\x00\x00"
            + question
        )
    if qtype != 1:  # AAAA and others: no data, no error
        return (
            ident
            + (0x8180 | recursion).to_bytes(2, "big")
            + b"\x00\x01\x00\x00\x00\x00\x00\x00"
            + question
        )
    record = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + socket.inet_aton(address)
    return (
        ident
        + (0x8180 | recursion).to_bytes(2, "big")
        + b"\x00\x01\x00\x01\x00\x00\x00\x00"
        + question
        + record
    )


def serve_world(log_path: str) -> None:
    """Listen on every target address and port; log each accepted connection; answer HTTP."""
    lock = threading.Lock()
    sockets: dict[int, tuple[socket.socket, str, int]] = {}
    targets = [PUBLIC, DNS, *DENIED_TARGETS.values()]
    for address in targets:
        for port in TARGET_PORTS:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((address, port))
            listener.listen(64)
            sockets[listener.fileno()] = (listener, address, port)
    for port in TARGET_PORTS:
        listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        listener.bind((METADATA6, port))
        listener.listen(64)
        sockets[listener.fileno()] = (listener, METADATA6, port)
    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns.bind((DNS, 53))
    names = {DNS_NAME: PUBLIC}

    def answer(connection: socket.socket, address: str, port: int) -> None:
        with connection:
            connection.settimeout(2)
            try:
                data = b""
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    chunk = connection.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                body = json.dumps({"host": address, "port": port}).encode()
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
            except OSError:
                pass

    print("ready", flush=True)
    poller = select.poll()
    for fd in sockets:
        poller.register(fd, select.POLLIN)
    poller.register(dns.fileno(), select.POLLIN)
    with open(log_path, "a") as log:
        while True:
            for fd, _ in poller.poll():
                if fd == dns.fileno():
                    query, peer = dns.recvfrom(4096)
                    try:
                        dns.sendto(dns_answer(query, names), peer)
                    except (IndexError, OSError):
                        pass
                    continue
                listener, address, port = sockets[fd]
                connection, peer = listener.accept()
                with lock:
                    log.write(json.dumps({"host": address, "port": port, "peer": peer[0]}) + "\n")
                    log.flush()
                threading.Thread(
                    target=answer, args=(connection, address, port), daemon=True
                ).start()


if __name__ == "__main__":
    if sys.argv[1:2] == ["world"]:
        serve_world(sys.argv[2])


@contextlib.contextmanager
def made_topology(folder: Path) -> Iterator[Topology]:
    """A test topology, removed even when the test fails; checked gone afterwards."""
    if os.geteuid() != 0 or not shutil.which("ip", path=TOOL_ENV["PATH"]):
        pytest.skip("network namespaces need root and iproute2")
    created = Topology(folder)
    try:
        created.create()
        yield created
    finally:
        created.remove()
    assert not [name for name in namespaces() if created.tag in name]
    assert not [line for line in ip("-br", "link").stdout.splitlines() if created.tag in line]
