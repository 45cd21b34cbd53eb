"""The network every sandbox of this process gets: its mode, and in egress mode the pool of
slot namespaces prepared behind this process's router (see the package docstring)."""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from codeactions_core.egress import EgressPolicy
from codeactions_core.execution.network.addressing import Addressing
from codeactions_core.execution.network.errors import NetworkSetupError
from codeactions_core.execution.network.ip import COMMAND_TIMEOUT
from codeactions_core.execution.network.nameservers import choose_nameservers
from codeactions_core.execution.network.namespaces import on_fresh_thread
from codeactions_core.execution.network.router import EgressRouter, check_prerequisites

log = logging.getLogger("codeactions_core.execution.network")

STATE_DIR = "/run/codeactions"
ACQUIRE_TIMEOUT = 10.0
HOST_REFRESH_SECONDS = 30.0


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


@dataclass
class _Slot:
    index: int
    fd: int
    address: str


class SandboxNetwork:
    """The network every sandbox of this process gets; see the package docstring."""

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
        self._router: EgressRouter | None = None
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
                self.uplink,
                self._router.addressing.subnet if self._router else "",
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
                # the next to go: the set of slots in use stays small
                self._ready.appendleft(prepared)
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

    @property
    def uplink(self) -> str | None:
        """The host's end of this process's uplink (egress), for logs and tests."""
        return self._router.uplink if self._router else None

    # --- egress setup (on threads of our own) ---

    def _start_egress(self) -> None:
        ip = check_prerequisites()
        addressing = Addressing.parse(self._subnet)
        policy = self._policy or EgressPolicy.from_terms(self._allow, self._deny)
        self._choose_nameservers()
        self._router = EgressRouter(
            ip,
            addressing,
            upstream=self.upstream,
            relayed=self._relayed,
            state_dir=self._state_dir,
            owned_table=self.owned_tables,
        )
        self.nameservers = [addressing.relay] if self._relayed else list(self.upstream)
        self._router.start(policy)
        for _ in range(self.spare):
            self._ready.append(self._make_slot())

    def _choose_nameservers(self) -> None:
        """Runs ask the IPv4 resolvers they can reach directly; when there are none but the
        host has others (loopback, IPv6), the runs ask a relay of this process instead."""
        self.upstream, self._relayed = choose_nameservers(self._dns_setting)
        if not self.upstream:
            self.dns_problem = "no name server: set SANDBOX_DNS"

    def _make_slot(self) -> _Slot:
        """A new slot namespace behind the router, registered under the next index."""
        router = self._router
        if router is None:
            raise NetworkSetupError("the sandbox network is stopped")
        with self._wanted:
            index = self._next_index
            self._next_index += 1
        fd, address = router.make_slot(index)
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
                if self._router is not None:
                    self._router.refresh_host_addresses()
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

    def _teardown(self) -> None:
        """Everything undone, in the host namespace (on a thread of our own)."""
        with self._wanted:
            slots = list(self._slots.values())
            self._slots.clear()
            self._ready.clear()
            self._in_use.clear()
        for slot in slots:
            os.close(slot.fd)
        if self._router is not None:
            self._router.teardown()
            self._router = None
        self._next_index = 0
