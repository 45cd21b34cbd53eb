"""The network of sandboxed runs: a private network namespace for every run, with an egress policy.

Runs in the server process (never in the zygote). Three modes
(``SANDBOX_NETWORK``):

``none``
    The child unshares a fresh network namespace itself: loopback only.
``host``
    The server's own network (development only).
``egress`` (the default)
    Per server process, one anonymous *router* namespace joined to the host by
    one veth (``ca<n>`` on the host, ``up0`` in the router), and a pool of
    anonymous *slot* namespaces prepared ahead, each with ``lo`` up and an
    ``eth0`` (a veth into the router, a ``/31`` and a default route). The
    policy lives in the router's nftables ruleset, out of the run's reach:
    established and related traffic accepted; the configured name servers on
    port 53; the host's own addresses refused; then ``SANDBOX_EGRESS_ALLOW``,
    ``SANDBOX_EGRESS_DENY`` and the always denied ranges
    (``codeactions_core.egress``); everything else (the public internet)
    accepted and masqueraded. Nothing new ever enters a slot, and slots never
    reach each other. On the host, a table owned by this process (nftables'
    ``flags owner``: it vanishes when the process does) masquerades the
    router's address and refuses new connections from ``ca<n>`` to the host
    itself. IPv6 is cleanly absent: no IPv6 address or route but ``::1``.

Name servers: runs ask the configured IPv4 resolvers (``SANDBOX_DNS``, else the
host's ``/etc/resolv.conf``) directly, on port 53 only. When the host has only
resolvers a run cannot reach (``127.0.0.53``, Docker's ``127.0.0.11``, IPv6),
this process relays the runs' queries to them from an address of the router.

Every namespace is held only by file descriptors of this process, so a
``SIGKILL`` leaves nothing behind: the namespaces, their veths and the owned
host table go with the process. The one host setting shared by every process,
``net.ipv4.ip_forward``, is switched on while at least one process needs it
and restored by the last one (a lock and a state file in ``/run/codeactions``,
keyed by the host namespace). Kernels before 5.12 know no owned tables: there
``stop`` removes the table, and a later start removes one a crash left.
Where ``/proc/sys`` is mounted read-only (Docker), the threads that write
network settings get a private mount namespace in which it is not.

The slot namespaces are made and configured on threads of our own (a
namespace change affects one thread only); the ``ip`` commands they start
inherit that thread's namespace. Nothing of this is on a run's path:
``acquire`` takes a prepared slot from a queue.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import errno
import fcntl
import ipaddress
import json
import logging
import os
import select
import shutil
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from codeactions_core.egress import EgressPolicy, Rule

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
CLONE_FS = 0x00000200
MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC, MS_SLAVE = 0x20, 0x1000, 0x4000, 0x80000
CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21
UPLINK_PREFIX = "ca"
ROUTER_UPLINK = "up0"
SLOT_PREFIX = "s"
ROUTER_TABLE = "codeactions"
HOST_TABLE_PREFIX = "codeactions_"
STATE_DIR = "/run/codeactions"
SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
COMMAND_TIMEOUT = 20.0
ACQUIRE_TIMEOUT = 10.0
HOST_REFRESH_SECONDS = 30.0
MAX_NAMESERVERS = 3  # what the resolver of glibc, musl and Go reads
RELAY_INFLIGHT = 32
RELAY_TIMEOUT = 2.0
NEEDS = "the container needs CAP_SYS_ADMIN and CAP_NET_ADMIN"

T = TypeVar("T")

_libc = ctypes.CDLL(None, use_errno=True)


class NetworkSetupError(Exception):
    """A step of the network setup failed; the message says which and why."""


@dataclass(frozen=True)
class NetworkSlot:
    """The network of one sandbox: a prepared namespace (``fd``) or what the child does itself."""

    fd: int | None
    """An open descriptor of a prepared network namespace (egress), else None."""
    new_namespace: bool
    """Without ``fd``: whether the child unshares a fresh, loopback-only namespace (none mode)."""
    index: int = -1
    """Which prepared slot (egress), for ``release``."""
    address: str | None = None
    """The slot's ``eth0`` address (egress), for logs and tests."""


NONE_SLOT = NetworkSlot(fd=None, new_namespace=True)
HOST_SLOT = NetworkSlot(fd=None, new_namespace=False)


# --- namespaces -------------------------------------------------------------------------


def setns(fd: int) -> None:
    """Move the calling thread into the network namespace ``fd``."""
    if _libc.setns(ctypes.c_int(fd), ctypes.c_int(CLONE_NEWNET)) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"setns: {os.strerror(number)}")


def unshare_network() -> None:
    """Move the calling thread into a new, empty network namespace."""
    if _libc.unshare(ctypes.c_int(CLONE_NEWNET)) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"unshare(CLONE_NEWNET): {os.strerror(number)}")


def thread_namespace() -> int:
    """A descriptor of the calling thread's network namespace."""
    return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def namespace_id(fd: int) -> int:
    """The inode that identifies a namespace."""
    return os.fstat(fd).st_ino


def on_fresh_thread(function: Callable[[], T], name: str = "codeactions-netns") -> T:
    """Call ``function`` on a new thread and return its result (or raise its exception):
    whatever namespace it moves into, the caller's thread stays where it is."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def write_sysctl(name: str, value: str) -> None:
    """Set a ``/proc/sys`` entry (network entries: of the calling thread's namespace)."""
    path = "/proc/sys/" + name.replace(".", "/")
    try:
        with open(path, "w") as handle:
            handle.write(value)
    except OSError as exc:
        if exc.errno != errno.EROFS or getattr(_thread_mounts, "private", False):
            raise
        writable_proc_sys()
        with open(path, "w") as handle:
            handle.write(value)


_thread_mounts = threading.local()


def writable_proc_sys() -> None:
    """Container engines mount ``/proc/sys`` read-only (Docker unless ``systempaths=unconfined``):
    give the calling thread, and only it, a mount namespace where it is writable. The network
    entries it then writes are still those of its own network namespace, as the kernel allows."""
    if _libc.unshare(ctypes.c_int(CLONE_FS | CLONE_NEWNS)) != 0:
        number = ctypes.get_errno()
        raise OSError(
            number, f"unshare(CLONE_NEWNS) for a writable /proc/sys: {os.strerror(number)}"
        )
    _thread_mounts.private = True
    keep = os.statvfs("/proc/sys").f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for target, flags in (("/", MS_REC | MS_SLAVE), ("/proc/sys", MS_REMOUNT | MS_BIND | keep)):
        if _libc.mount(None, target.encode(), None, ctypes.c_ulong(flags), None) != 0:
            number = ctypes.get_errno()
            raise OSError(number, f"remounting {target}: {os.strerror(number)}")


def read_sysctl(name: str) -> str:
    with open("/proc/sys/" + name.replace(".", "/")) as handle:
        return handle.read().strip()


def effective_capabilities() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


# --- nftables -----------------------------------------------------------------------------


class Nftables:
    """A libnftables context, bound to the network namespace of the thread that made it.

    A table created with ``flags owner`` through it lives as long as the context
    (its netlink socket), hence at most as long as this process.
    """

    _lib: ctypes.CDLL | None = None

    @classmethod
    def library(cls) -> ctypes.CDLL:
        if cls._lib is None:
            name = ctypes.util.find_library("nftables") or "libnftables.so.1"
            try:
                lib = ctypes.CDLL(name, use_errno=True)
            except OSError:
                raise NetworkSetupError("libnftables not found: install nftables") from None
            lib.nft_ctx_new.restype = ctypes.c_void_p
            lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
            lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
            lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
            lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
            lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            cls._lib = lib
        return cls._lib

    def __init__(self) -> None:
        self._library = self.library()
        self._ctx = self._library.nft_ctx_new(0)
        if not self._ctx:
            raise NetworkSetupError("libnftables could not make a context")
        self._library.nft_ctx_buffer_output(self._ctx)
        self._library.nft_ctx_buffer_error(self._ctx)
        self._lock = threading.Lock()

    def run(self, commands: str) -> str:
        """Run nft commands (a ruleset file's text); their output. NetworkSetupError on failure."""
        with self._lock:
            if not self._ctx:
                raise NetworkSetupError("nftables context closed")
            result = self._library.nft_run_cmd_from_buffer(self._ctx, commands.encode())
            output = (self._library.nft_ctx_get_output_buffer(self._ctx) or b"").decode()
            error = (self._library.nft_ctx_get_error_buffer(self._ctx) or b"").decode()
        if result != 0:
            raise NetworkSetupError(f"nftables refused the ruleset: {error.strip()}")
        return output

    def close(self) -> None:
        with self._lock:
            if self._ctx:
                self._library.nft_ctx_free(self._ctx)
                self._ctx = None


def nft_set(addresses: Iterable[str]) -> str:
    """An nft set literal's elements (``{ a, b }``), or "" for none."""
    items = sorted(set(addresses))
    return "{ " + ", ".join(items) + " }" if items else ""


def rule_match(rule: Rule) -> str:
    """The nft match of an allow/deny entry (IPv4 only: the sandbox has no IPv6)."""
    text = f"ip daddr {rule.network}"
    if rule.port is not None:
        text += f" meta l4proto {{ tcp, udp }} th dport {rule.port}"
    return text


def router_ruleset(
    policy: EgressPolicy,
    nameservers: Iterable[str],
    host_addresses: Iterable[str],
    subnet: ipaddress.IPv4Network,
    relay: str | None = None,
) -> str:
    """The router namespace's table: the egress policy of every slot."""
    ipv4 = [rule for rule in policy.allow if rule.network.version == 4]
    denied = [str(net) for net in policy.denied_ranges if net.version == 4] + [str(subnet)]
    lines = [
        f"table inet {ROUTER_TABLE} {{",
        "  set nameservers { type ipv4_addr; }",
        "  set host { type ipv4_addr; flags interval; auto-merge; }",
        "  set denied { type ipv4_addr; flags interval; auto-merge; }",
        "  chain refuse {",
        "    meta l4proto tcp reject with tcp reset",
        "    reject with icmpx type admin-prohibited",
        "  }",
        "  chain egress {",
        "    ip daddr @nameservers udp dport 53 accept",
        "    ip daddr @nameservers tcp dport 53 accept",
        "    ip daddr @host jump refuse",
        *(f"    {rule_match(rule)} accept" for rule in ipv4),
        *(
            f"    {rule_match(rule)} jump refuse"
            for rule in policy.deny
            if rule.network.version == 4
        ),
        "    ip daddr @denied jump refuse",
        "    accept",
        "  }",
        "  chain forward {",
        "    type filter hook forward priority 0; policy drop;",
        "    ct state invalid drop",
        "    ct state established,related accept",
        "    meta nfproto ipv6 drop",
        f'    iifname "{SLOT_PREFIX}*" oifname "{ROUTER_UPLINK}" jump egress',
        f'    iifname "{SLOT_PREFIX}*" jump refuse',
        "  }",
        "  chain input {",
        "    type filter hook input priority 0; policy drop;",
        "    ct state established,related accept",
        '    iifname "lo" accept',
        *(
            [
                f'    iifname "{SLOT_PREFIX}*" ip daddr {relay} meta l4proto {{ tcp, udp }} th dport 53 accept'
            ]
            if relay
            else []
        ),
        f'    iifname "{SLOT_PREFIX}*" jump refuse',
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority 100; policy accept;",
        f'    oifname "{ROUTER_UPLINK}" masquerade',
        "  }",
        "}",
    ]
    elements = [
        ("nameservers", nameservers),
        ("host", host_addresses),
        ("denied", denied),
    ]
    for name, items in elements:
        literal = nft_set(items)
        if literal:
            lines.append(f"add element inet {ROUTER_TABLE} {name} {literal}")
    return "\n".join(lines) + "\n"


def host_ruleset(
    table: str,
    uplink: str,
    router_address: str,
    subnet: ipaddress.IPv4Network,
    nameservers: Iterable[str],
    guard_forwarding: bool,
    owned: bool = True,
) -> str:
    """The host's table of one server process: owned by it, gone with it (kernels before 5.12
    know no owner: then ``stop`` removes it, or the next start after a crash)."""
    dns = nft_set(nameservers)
    lines = [
        f"table inet {table} {{",
        *(["  flags owner"] if owned else []),
        "  chain input {",
        "    type filter hook input priority -10; policy accept;",
        f'    iifname != "{uplink}" return',
        "    ct state established,related accept",
        *(
            [f"    ip daddr {dns} udp dport 53 accept", f"    ip daddr {dns} tcp dport 53 accept"]
            if dns
            else []
        ),
        "    meta l4proto tcp reject with tcp reset",
        "    reject with icmpx type admin-prohibited",
        "  }",
        "  chain forward {",
        "    type filter hook forward priority -10; policy accept;",
        f'    iifname "{uplink}" ip daddr {subnet} drop',
        f'    iifname "{uplink}" meta nfproto ipv6 drop',
        f'    iifname "{uplink}" ip saddr != {router_address} drop',
        # This host did not forward before the sandbox network needed it: it still does not,
        # for any traffic but the sandbox uplinks' (of every server process on this host).
        *(
            [f'    iifname != "{UPLINK_PREFIX}*" oifname != "{UPLINK_PREFIX}*" drop']
            if guard_forwarding
            else []
        ),
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority 100; policy accept;",
        f'    ip saddr {router_address} oifname != "{uplink}" masquerade',
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


# --- addresses -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Addressing:
    """The sandbox subnet's split: its first half gives each server process's uplink a /30
    (``n`` of ``ca<n>``), its second half each slot a /31 inside that process's router."""

    subnet: ipaddress.IPv4Network

    @classmethod
    def parse(cls, text: str) -> Addressing:
        try:
            subnet = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise NetworkSetupError(f"SANDBOX_NETWORK_SUBNET {text!r} is not a CIDR") from None
        if subnet.version != 4 or subnet.prefixlen > 24:
            raise NetworkSetupError(
                f"SANDBOX_NETWORK_SUBNET {text!r}: expected an IPv4 range of /24 or larger"
            )
        return cls(subnet)

    @property
    def half(self) -> int:
        return self.subnet.num_addresses // 2

    @property
    def uplinks(self) -> int:
        return self.half // 4

    @property
    def slots(self) -> int:
        return self.half // 2 - 1  # the last pair holds the DNS relay's address

    @property
    def relay(self) -> str:
        """The DNS relay's address (on the router's loopback), when runs need one."""
        return f"{self.subnet.broadcast_address - 1}"

    def uplink(self, n: int) -> tuple[str, str]:
        """The host's and the router's address (``/30``) of uplink ``n``."""
        base = self.subnet.network_address + 4 * n
        return f"{base + 1}", f"{base + 2}"

    def slot(self, k: int) -> tuple[str, str]:
        """The router's and the slot's address (``/31``) of slot ``k``."""
        base = self.subnet.network_address + self.half + 2 * k
        return f"{base}", f"{base + 1}"


def host_nameservers(path: str = "/etc/resolv.conf") -> list[str]:
    """The nameserver addresses of a resolv.conf."""
    try:
        text = Path(path).read_text()
    except OSError:
        return []
    servers = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            servers.append(fields[1].split("%")[0])
    return servers


# --- the shared host setting: ip_forward ---------------------------------------------------------


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


# --- a DNS relay, for resolvers runs cannot reach ------------------------------------------------


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
        """Run ``work`` unless RELAY_INFLIGHT queries are already being answered (a flood: dropped)."""
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


# --- the sandbox network ---------------------------------------------------------------------


@dataclass
class _Slot:
    index: int
    fd: int
    address: str


class SandboxNetwork:
    """The network every sandbox of this process gets; see the module docstring."""

    _instances: ClassVar[dict[tuple[Any, ...], SandboxNetwork]] = {}
    _instances_lock: ClassVar[threading.Lock] = threading.Lock()
    owned_tables: ClassVar[bool] = True
    """Whether to try an nftables table owned by this process (kernel 5.12+) first."""

    def __init__(
        self,
        *,
        mode: str = "egress",
        allow: Iterable[str] = (),
        deny: Iterable[str] = (),
        dns: Iterable[str] = (),
        subnet: str = "10.254.0.0/16",
        spare: int = 4,
        state_dir: str = STATE_DIR,
        policy: EgressPolicy | None = None,
    ) -> None:
        self.asked = mode
        self.mode = "none" if mode == "egress" else mode  # until start() proves egress works
        self.problem: str | None = None
        self.spare = max(1, spare)
        self._allow, self._deny = tuple(allow), tuple(deny)
        self._policy = policy
        self._dns_setting = tuple(dns)
        self._subnet = subnet
        self._state_dir = state_dir
        self._lock = threading.RLock()
        self._ready: deque[_Slot] = deque()
        self._slots: dict[int, _Slot] = {}
        self._in_use: set[int] = set()
        self._wanted = threading.Condition(threading.Lock())
        self._started = False
        self._stopping = False
        self._refiller: threading.Thread | None = None
        self._pid = os.getpid()
        self.nameservers: list[str] = []
        """What runs find in their resolv.conf: the resolvers, or the relay's address."""
        self.upstream: list[str] = []
        """The resolvers that answer the runs' queries."""
        self.dns_problem: str | None = None
        self._relayed = False
        self._relay: DnsRelay | None = None
        # egress state
        self._ip = ""
        self._host_fd = -1
        self._router_fd = -1
        self._uplink: str | None = None
        self._uplink_n = -1
        self._host_nft: Nftables | None = None
        self._host_table: str | None = None
        """The host table's name when it is not owned (removed by stop)."""
        self._router_nft: Nftables | None = None
        self._forwarding: Forwarding | None = None
        self._addressing: Addressing | None = None
        self._host_addresses: list[str] = []
        self._next_index = 0

    @classmethod
    def for_settings(cls, settings: Any) -> SandboxNetwork:
        """The one instance of this process for these settings (a forked child gets its own)."""
        key = (
            os.getpid(),
            settings.sandbox_network,
            tuple(settings.sandbox_egress_allow),
            tuple(settings.sandbox_egress_deny),
            tuple(settings.sandbox_dns),
            settings.sandbox_network_subnet,
        )
        with cls._instances_lock:
            for stale in [k for k in cls._instances if k[0] != key[0]]:
                del cls._instances[stale]  # a parent's, inherited by fork: never ours to use
            if key not in cls._instances:
                cls._instances[key] = cls(
                    mode=settings.sandbox_network,
                    allow=settings.sandbox_egress_allow,
                    deny=settings.sandbox_egress_deny,
                    dns=settings.sandbox_dns,
                    subnet=settings.sandbox_network_subnet,
                    spare=max(2, int(getattr(settings, "worker_pool_size", 4))),
                )
            return cls._instances[key]

    # --- public API ---

    def start(self) -> None:
        """Set the mode up (idempotent); a missing capability is recorded in ``problem`` and
        the network falls back to ``none`` (never to ``host``)."""
        with self._lock:
            if self._started:
                return
            self._started = True
            self._stopping = False
            self.problem = self.dns_problem = None
            if self.asked == "host":
                self.mode = "host"
                log.warning(
                    "sandbox network: host mode, runs share the server's network (development only)"
                )
                return
            if self.asked != "egress":
                self.mode = "none"
                return
            try:
                on_fresh_thread(self._start_egress)
            except Exception as exc:  # noqa: BLE001 - whatever failed, fail closed and say why
                self.problem = str(exc) or type(exc).__name__
                log.error(
                    "sandbox network: egress unavailable (%s); runs get no network (none)", exc
                )
                on_fresh_thread(self._teardown)
                self.mode = "none"
                return
            self.mode = "egress"
            atexit.register(self.stop)  # a clean exit restores the host's ip_forward
            self._refiller = threading.Thread(
                target=self._refill_loop, name="codeactions-netpool", daemon=True
            )
            self._refiller.start()
            log.info(
                "sandbox network: egress via %s (%s), name servers %s",
                self._uplink,
                self._addressing.subnet if self._addressing else "",
                ", ".join(self.nameservers),
            )

    def acquire(self) -> NetworkSlot:
        """A network for one sandbox, exclusive until ``release``."""
        if self.mode == "host":
            return HOST_SLOT
        if self.mode != "egress":
            return NONE_SLOT
        deadline = time.monotonic() + ACQUIRE_TIMEOUT
        with self._wanted:
            while not self._ready:
                if self._stopping or self.mode != "egress":
                    return NONE_SLOT
                self._wanted.notify_all()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    from codeactions_core.errors import Unavailable

                    raise Unavailable("no sandbox network namespace could be prepared in time")
                self._wanted.wait(remaining)
            slot = self._ready.popleft()
            self._in_use.add(slot.index)
            if len(self._ready) < self.spare:
                self._wanted.notify_all()
        return NetworkSlot(fd=slot.fd, new_namespace=False, index=slot.index, address=slot.address)

    def release(self, slot: NetworkSlot) -> None:
        """Give a slot back once every process of its run is gone; it is reused as it is."""
        if slot.fd is None:
            return
        with self._wanted:
            if slot.index not in self._in_use:
                return
            self._in_use.discard(slot.index)
            prepared = self._slots.get(slot.index)
            if prepared is not None and not self._stopping:
                self._ready.appendleft(
                    prepared
                )  # the next to go: the set of slots in use stays small
                self._wanted.notify_all()

    def protections(self) -> dict[str, Any]:
        """What is in force, truthfully: the mode, what enforces the policy, the resolvers runs
        use (and the relay's address when they ask through it), whether runs have IPv6 (None:
        the host's) and why the asked mode is not in force."""
        egress = self.mode == "egress"
        problems = [text for text in (self.problem, self.dns_problem if egress else None) if text]
        return {
            "network": self.mode,
            "egress_policy": "nftables" if egress else None,
            "dns": list(self.upstream) if egress else [],
            "dns_relay": (self.nameservers[0] if self._relayed and self.nameservers else None)
            if egress
            else None,
            "ipv6": False if self.mode != "host" else None,
            "problem": "; ".join(problems) or None,
        }

    def resolv_conf(self) -> str:
        """The text of /etc/resolv.conf inside the sandbox."""
        if self.mode == "host":
            try:
                return Path("/etc/resolv.conf").read_text()
            except OSError:
                return ""
        if self.mode != "egress" or not self.nameservers:
            return "# no network: no name servers\n"
        return (
            "".join(f"nameserver {server}\n" for server in self.nameservers)
            + "options timeout:2 attempts:2\n"
        )

    def stop(self) -> None:
        """Remove everything this process set up (namespaces, veths, tables, forwarding)."""
        if os.getpid() != self._pid:
            return  # a forked child's copy: the parent's to undo
        with self._lock:
            if not self._started:
                return
            self._started = False
            with self._wanted:
                self._stopping = True
                self._wanted.notify_all()
            if self._refiller is not None:
                self._refiller.join(COMMAND_TIMEOUT * 2)
                self._refiller = None
            if self.asked == "egress":
                on_fresh_thread(self._teardown)
            self.mode = "none" if self.asked == "egress" else self.mode

    # --- egress setup (on threads of our own) ---

    def _start_egress(self) -> None:
        self._check_capabilities()
        self._addressing = Addressing.parse(self._subnet)
        policy = self._policy or EgressPolicy.from_terms(self._allow, self._deny)
        self._choose_nameservers()
        self._host_fd = thread_namespace()
        try:
            unshare_network()
        except OSError as exc:
            raise NetworkSetupError(
                f"creating a network namespace failed: {errno.errorcode.get(exc.errno, exc.errno)} — {NEEDS}"
            ) from None
        try:
            self._router_fd = thread_namespace()
            write_sysctl("net.ipv6.conf.default.disable_ipv6", "1")
            write_sysctl("net.ipv6.conf.all.disable_ipv6", "1")
            write_sysctl("net.ipv4.ip_forward", "1")
            write_sysctl("net.ipv4.conf.all.rp_filter", "1")  # a slot cannot pass for another
            write_sysctl("net.ipv4.conf.default.rp_filter", "1")
            self._router_nft = Nftables()
        finally:
            setns(self._host_fd)
        self.nameservers = [self._addressing.relay] if self._relayed else list(self.upstream)
        self._host_addresses = self._read_host_addresses()
        self._check_subnet_is_free()
        self._make_uplink()
        self._configure_router(policy)
        self._forwarding = Forwarding(self._state_dir, namespace_id(self._host_fd))
        guard = self._forwarding.enable()
        self._host_nft = Nftables()  # made on this thread, in the host namespace
        table = HOST_TABLE_PREFIX + (self._uplink or "")
        router_address = self._addressing.uplink(self._uplink_n)[1]
        direct = [] if self._relayed else self.upstream
        arguments = (
            table,
            self._uplink or "",
            router_address,
            self._addressing.subnet,
            direct,
            guard,
        )
        self._remove_stale_host_tables()
        try:  # a table of this name is a crashed process's: the name follows the uplink, ours now
            self._host_nft.run(f"delete table inet {table}")
        except NetworkSetupError:
            pass
        try:
            if not self.owned_tables:
                raise NetworkSetupError("owned tables not wanted")
            self._host_nft.run(host_ruleset(*arguments))
        except NetworkSetupError as exc:
            log.info(
                "sandbox network: no owned nftables table (%s); it is removed on stop instead", exc
            )
            self._host_nft.run(host_ruleset(*arguments, owned=False))
            self._host_table = table
        if self._relayed:
            self._start_relay()
        for _ in range(self.spare):
            self._ready.append(self._make_slot())

    def _check_capabilities(self) -> None:
        self._ip = shutil.which("ip", path=SBIN_PATH) or ""
        if not self._ip:
            raise NetworkSetupError("ip not found: install iproute2")
        Nftables.library()
        if not shutil.which("nft", path=SBIN_PATH):
            log.debug("nft command not found; libnftables is enough")
        caps = effective_capabilities()
        missing = [
            name
            for bit, name in ((CAP_SYS_ADMIN, "CAP_SYS_ADMIN"), (CAP_NET_ADMIN, "CAP_NET_ADMIN"))
            if not caps & (1 << bit)
        ]
        if missing:
            raise NetworkSetupError(
                f"the server lacks {' and '.join(missing)} (uid {os.geteuid()}): {NEEDS}"
            )

    def _choose_nameservers(self) -> None:
        """Runs ask the IPv4 resolvers they can reach directly; when there are none but the
        host has others (loopback, IPv6), the runs ask a relay of this process instead."""
        asked = list(self._dns_setting) or host_nameservers()
        direct, relayed = [], []
        for text in asked:
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                raise NetworkSetupError(f"SANDBOX_DNS: {text!r} is not an IP address") from None
            if address.is_unspecified:
                continue
            if address.version != 4 or address.is_loopback:
                relayed.append(str(address))
            else:
                direct.append(str(address))
        self.upstream = (direct or relayed)[:MAX_NAMESERVERS]
        self._relayed = not direct and bool(relayed)
        if not self.upstream:
            self.dns_problem = "no name server: set SANDBOX_DNS"

    def _read_host_addresses(self) -> list[str]:
        result = self._ip_run(["-j", "-4", "addr", "show"])
        addresses = []
        for link in json.loads(result or "[]"):
            for info in link.get("addr_info", []):
                if info.get("local"):
                    addresses.append(info["local"])
        return sorted(set(addresses))

    def _check_subnet_is_free(self) -> None:
        """SANDBOX_NETWORK_SUBNET must be a range the host does not use (but for our uplinks)."""
        assert self._addressing is not None
        subnet = self._addressing.subnet
        routes = json.loads(self._ip_run(["-j", "-4", "route", "show", "table", "all"]) or "[]")
        for route in routes:
            destination, device = route.get("dst", ""), route.get("dev", "")
            if destination in ("", "default") or route.get("type") in ("local", "broadcast"):
                continue
            if device.startswith(UPLINK_PREFIX) and device[len(UPLINK_PREFIX) :].isdigit():
                continue
            try:
                network = ipaddress.ip_network(destination, strict=False)
            except ValueError:
                continue
            if network.overlaps(subnet):
                raise NetworkSetupError(
                    f"SANDBOX_NETWORK_SUBNET {subnet} overlaps the host's route to {destination} "
                    f"(dev {device or '?'}): choose a range the host does not use"
                )

    def _make_uplink(self) -> None:
        assert self._addressing is not None
        for n in range(self._addressing.uplinks):
            name = f"{UPLINK_PREFIX}{n}"
            try:
                self._ip_batch(
                    [
                        f"link add {name} type veth peer name {ROUTER_UPLINK} netns /proc/self/fd/{self._router_fd}"
                    ],
                    pass_fds=(self._router_fd,),
                )
            except NetworkSetupError as exc:
                if "File exists" in str(exc):
                    continue
                raise
            self._uplink, self._uplink_n = name, n
            break
        else:
            raise NetworkSetupError(f"no free uplink interface name {UPLINK_PREFIX}<n> left")
        host, _ = self._addressing.uplink(self._uplink_n)
        try:
            write_sysctl(f"net.ipv6.conf.{self._uplink}.disable_ipv6", "1")
        except OSError:
            pass  # IPv6 may be off altogether
        self._ip_batch([f"addr add {host}/30 dev {self._uplink}", f"link set {self._uplink} up"])

    def _configure_router(self, policy: EgressPolicy) -> None:
        assert self._addressing is not None and self._router_nft is not None
        host, router = self._addressing.uplink(self._uplink_n)
        setns(self._router_fd)
        try:
            self._ip_batch(
                [
                    "link set lo up",
                    *([f"addr add {self._addressing.relay}/32 dev lo"] if self._relayed else []),
                    f"addr add {router}/30 dev {ROUTER_UPLINK}",
                    f"link set {ROUTER_UPLINK} up",
                    f"route add default via {host} dev {ROUTER_UPLINK}",
                ]
            )
        finally:
            setns(self._host_fd)
        direct = [] if self._relayed else self.upstream
        relay = self._addressing.relay if self._relayed else None
        self._router_nft.run(
            router_ruleset(policy, direct, self._host_addresses, self._addressing.subnet, relay)
        )

    def _start_relay(self) -> None:
        """The relay's sockets are made in the router namespace; it asks from this one."""
        assert self._addressing is not None
        setns(self._router_fd)
        try:
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            udp.bind((self._addressing.relay, 53))
            tcp.bind((self._addressing.relay, 53))
            tcp.listen(64)
        finally:
            setns(self._host_fd)
        self._relay = DnsRelay(list(self.upstream), udp, tcp)
        self._relay.start()

    def _make_slot(self) -> _Slot:
        """A new slot namespace: lo up, eth0 into the router, its address and default route."""
        assert self._addressing is not None
        with self._wanted:
            index = self._next_index
            self._next_index += 1
        if index >= self._addressing.slots:
            raise NetworkSetupError("the sandbox subnet has no room for more slots")
        gateway, address = self._addressing.slot(index)
        unshare_network()
        fd = -1
        try:
            fd = thread_namespace()
            write_sysctl("net.ipv6.conf.default.disable_ipv6", "1")
            self._ip_batch(
                [
                    f"link add eth0 type veth peer name {SLOT_PREFIX}{index} netns /proc/self/fd/{self._router_fd}",
                    f"addr add {address}/31 dev eth0",
                    "link set lo up",
                    "link set eth0 up",
                ],
                pass_fds=(self._router_fd,),
            )
            setns(self._router_fd)
            self._ip_batch(
                [
                    f"addr add {gateway}/31 dev {SLOT_PREFIX}{index}",
                    f"link set {SLOT_PREFIX}{index} up",
                ]
            )
            setns(fd)
            self._ip_batch([f"route add default via {gateway} dev eth0"])
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise
        finally:
            setns(self._host_fd)
        slot = _Slot(index, fd, address)
        with self._wanted:
            self._slots[index] = slot
        return slot

    def _refill_loop(self) -> None:
        next_refresh = time.monotonic() + HOST_REFRESH_SECONDS
        failures = 0
        while True:
            with self._wanted:
                while not self._stopping and len(self._ready) >= self.spare:
                    if not self._wanted.wait(max(0.0, next_refresh - time.monotonic())):
                        break
                if self._stopping:
                    return
                short = len(self._ready) < self.spare
            if time.monotonic() >= next_refresh:
                next_refresh = time.monotonic() + HOST_REFRESH_SECONDS
                self._refresh_host_addresses()
            if not short:
                continue
            try:
                slot = self._make_slot()
            except (NetworkSetupError, OSError, subprocess.SubprocessError) as exc:
                failures += 1
                log.error("sandbox network: preparing a slot failed: %s", exc)
                with self._wanted:
                    self._wanted.wait(min(5.0, 0.1 * failures))
                continue
            failures = 0
            with self._wanted:
                if self._stopping:
                    return
                self._ready.append(slot)
                self._wanted.notify_all()

    def _refresh_host_addresses(self) -> None:
        """The host's addresses change (DHCP): keep the router's set in step."""
        try:
            addresses = self._read_host_addresses()
            if addresses != self._host_addresses and self._router_nft is not None:
                literal = nft_set(addresses)
                command = f"flush set inet {ROUTER_TABLE} host\n"
                if literal:
                    command += f"add element inet {ROUTER_TABLE} host {literal}\n"
                self._router_nft.run(command)
                self._host_addresses = addresses
        except (NetworkSetupError, OSError, ValueError, subprocess.SubprocessError) as exc:
            log.warning("sandbox network: refreshing the host's addresses failed: %s", exc)

    def _remove_stale_host_tables(self) -> None:
        """Remove tables of ours whose uplink is gone (left by a crash on a kernel without owned tables)."""
        assert self._host_nft is not None
        try:
            listing = self._host_nft.run("list tables")
            links = {
                link["ifname"] for link in json.loads(self._ip_run(["-j", "link", "show"]) or "[]")
            }
        except (NetworkSetupError, ValueError, subprocess.SubprocessError):
            return
        for line in listing.splitlines():
            fields = line.split()
            ours = len(fields) == 3 and fields[2].startswith(HOST_TABLE_PREFIX + UPLINK_PREFIX)
            if ours and fields[2][len(HOST_TABLE_PREFIX) :] not in links:
                try:
                    self._host_nft.run(f"delete table {fields[1]} {fields[2]}")
                except NetworkSetupError:
                    pass

    def _other_uplinks_alive(self) -> bool:
        try:
            links = json.loads(self._ip_run(["-j", "link", "show", "type", "veth"]) or "[]")
        except (NetworkSetupError, ValueError, subprocess.SubprocessError):
            return True  # when unsure, leave forwarding on
        for link in links:
            name = link.get("ifname", "")
            if (
                name != self._uplink
                and name.startswith(UPLINK_PREFIX)
                and name[len(UPLINK_PREFIX) :].isdigit()
            ):
                return True
        return False

    def _teardown(self) -> None:
        """Everything undone, in the host namespace (on a thread of our own)."""
        with self._wanted:
            slots = list(self._slots.values())
            self._slots.clear()
            self._ready.clear()
            self._in_use.clear()
        for slot in slots:
            os.close(slot.fd)
        if self._relay is not None:
            self._relay.stop()
            self._relay = None
        if self._host_nft is not None:
            if self._host_table:
                try:
                    self._host_nft.run(f"delete table inet {self._host_table}")
                except NetworkSetupError as exc:
                    log.warning(
                        "sandbox network: removing table %s failed: %s", self._host_table, exc
                    )
                self._host_table = None
            self._host_nft.close()
            self._host_nft = None
        if self._router_nft is not None:
            self._router_nft.close()
            self._router_nft = None
        if self._uplink is not None and self._ip:
            try:
                self._ip_batch([f"link del {self._uplink}"])
            except NetworkSetupError as exc:
                log.warning("sandbox network: removing %s failed: %s", self._uplink, exc)
        if self._router_fd >= 0:
            os.close(self._router_fd)
            self._router_fd = -1
        if self._forwarding is not None:
            try:
                self._forwarding.release(self._other_uplinks_alive)
            except OSError as exc:
                log.warning("sandbox network: restoring ip_forward failed: %s", exc)
            self._forwarding = None
        self._uplink, self._uplink_n = None, -1
        if self._host_fd >= 0:
            os.close(self._host_fd)
            self._host_fd = -1
        self._next_index = 0

    # --- commands ---

    def _ip_run(self, args: list[str]) -> str:
        result = subprocess.run(
            [self._ip, *args],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if result.returncode != 0:
            raise NetworkSetupError(f"ip {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def _ip_batch(self, commands: list[str], pass_fds: tuple[int, ...] = ()) -> None:
        """Run ``ip`` commands in the calling thread's network namespace."""
        result = subprocess.run(
            [self._ip, "-batch", "-"],
            input="\n".join(commands) + "\n",
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            pass_fds=pass_fds,
            check=False,
        )
        if result.returncode != 0:
            raise NetworkSetupError(f"ip {'; '.join(commands)}: {result.stderr.strip()}")
