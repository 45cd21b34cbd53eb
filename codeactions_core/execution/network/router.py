"""The egress plumbing of one server process: its router namespace, uplink and host table,
the DNS relay, and the slot namespaces behind the router.

Every method that changes namespaces runs on a thread of the caller's own (see
``namespaces.on_fresh_thread``) and returns to the host namespace it started in.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import os
import shutil
import socket
import subprocess

from codeactions_core.egress import EgressPolicy
from codeactions_core.execution.network.addressing import (
    ROUTER_UPLINK,
    SLOT_PREFIX,
    UPLINK_PREFIX,
    Addressing,
)
from codeactions_core.execution.network.dns_relay import DnsRelay
from codeactions_core.execution.network.errors import NetworkSetupError
from codeactions_core.execution.network.forwarding import Forwarding
from codeactions_core.execution.network.ip import SBIN_PATH, Ip
from codeactions_core.execution.network.namespaces import (
    CAP_NET_ADMIN,
    CAP_SYS_ADMIN,
    effective_capabilities,
    namespace_id,
    setns,
    thread_namespace,
    unshare_network,
    write_sysctl,
)
from codeactions_core.execution.network.nftables import Nftables
from codeactions_core.execution.network.rulesets import (
    HOST_TABLE_PREFIX,
    ROUTER_TABLE,
    host_ruleset,
    nft_set,
    router_ruleset,
)

log = logging.getLogger("codeactions_core.execution.network")

NEEDS = "the container needs CAP_SYS_ADMIN and CAP_NET_ADMIN"


def check_prerequisites() -> Ip:
    """The ``ip`` command, once libnftables and the capabilities egress needs are known to be
    here (NetworkSetupError naming what is missing otherwise)."""
    path = shutil.which("ip", path=SBIN_PATH) or ""
    if not path:
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
    return Ip(path)


class EgressRouter:
    """The router namespace of this process, joined to the host by its uplink ``ca<n>``, with
    the egress policy in its nftables ruleset and this process's table on the host."""

    def __init__(
        self,
        ip: Ip,
        addressing: Addressing,
        *,
        upstream: list[str],
        relayed: bool,
        state_dir: str,
        owned_table: bool,
    ) -> None:
        self.ip = ip
        self.addressing = addressing
        self.upstream = upstream
        """The resolvers that answer the runs' queries."""
        self.relayed = relayed
        """Whether runs ask them through the relay (else directly)."""
        self._state_dir = state_dir
        self._owned_table = owned_table
        self.uplink: str | None = None
        self.uplink_n = -1
        self._host_fd = -1
        self._router_fd = -1
        self._host_nft: Nftables | None = None
        self._host_table: str | None = None
        """The host table's name when it is not owned (removed by teardown)."""
        self._router_nft: Nftables | None = None
        self._forwarding: Forwarding | None = None
        self._host_addresses: list[str] = []
        self._relay: DnsRelay | None = None

    def start(self, policy: EgressPolicy) -> None:
        """Make the router namespace, the uplink, both rulesets and the relay (if runs need
        it); what is done is undone by ``teardown``, also after a failure."""
        self._host_fd = thread_namespace()
        try:
            unshare_network()
        except OSError as exc:
            code = errno.errorcode.get(exc.errno, exc.errno)
            raise NetworkSetupError(
                f"creating a network namespace failed: {code} — {NEEDS}"
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
        self._host_addresses = self._read_host_addresses()
        self._check_subnet_is_free()
        self._make_uplink()
        self._configure_router(policy)
        self._forwarding = Forwarding(self._state_dir, namespace_id(self._host_fd))
        guard = self._forwarding.enable()
        self._host_nft = Nftables()  # made on this thread, in the host namespace
        self._add_host_table(guard)
        if self.relayed:
            self._start_relay()

    def make_slot(self, index: int) -> tuple[int, str]:
        """A new slot namespace (a descriptor of it, and its address): lo up, eth0 into the
        router, its address and default route."""
        if index >= self.addressing.slots:
            raise NetworkSetupError("the sandbox subnet has no room for more slots")
        gateway, address = self.addressing.slot(index)
        router = f"/proc/self/fd/{self._router_fd}"
        unshare_network()
        fd = -1
        try:
            fd = thread_namespace()
            write_sysctl("net.ipv6.conf.default.disable_ipv6", "1")
            self.ip.batch(
                [
                    f"link add eth0 type veth peer name {SLOT_PREFIX}{index} netns {router}",
                    f"addr add {address}/31 dev eth0",
                    "link set lo up",
                    "link set eth0 up",
                ],
                pass_fds=(self._router_fd,),
            )
            setns(self._router_fd)
            self.ip.batch(
                [
                    f"addr add {gateway}/31 dev {SLOT_PREFIX}{index}",
                    f"link set {SLOT_PREFIX}{index} up",
                ]
            )
            setns(fd)
            self.ip.batch([f"route add default via {gateway} dev eth0"])
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise
        finally:
            setns(self._host_fd)
        return fd, address

    def refresh_host_addresses(self) -> None:
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

    def teardown(self) -> None:
        """Everything undone, in the host namespace (on a thread of our own)."""
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
        if self.uplink is not None:
            try:
                self.ip.batch([f"link del {self.uplink}"])
            except NetworkSetupError as exc:
                log.warning("sandbox network: removing %s failed: %s", self.uplink, exc)
        if self._router_fd >= 0:
            os.close(self._router_fd)
            self._router_fd = -1
        if self._forwarding is not None:
            try:
                self._forwarding.release(self._other_uplinks_alive)
            except OSError as exc:
                log.warning("sandbox network: restoring ip_forward failed: %s", exc)
            self._forwarding = None
        self.uplink, self.uplink_n = None, -1
        if self._host_fd >= 0:
            os.close(self._host_fd)
            self._host_fd = -1

    # --- setup steps ---

    def _read_host_addresses(self) -> list[str]:
        result = self.ip.run(["-j", "-4", "addr", "show"])
        addresses = []
        for link in json.loads(result or "[]"):
            for info in link.get("addr_info", []):
                if info.get("local"):
                    addresses.append(info["local"])
        return sorted(set(addresses))

    def _check_subnet_is_free(self) -> None:
        """SANDBOX_NETWORK_SUBNET must be a range the host does not use (but for our uplinks)."""
        subnet = self.addressing.subnet
        routes = json.loads(self.ip.run(["-j", "-4", "route", "show", "table", "all"]) or "[]")
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
        router = f"/proc/self/fd/{self._router_fd}"
        for n in range(self.addressing.uplinks):
            name = f"{UPLINK_PREFIX}{n}"
            try:
                self.ip.batch(
                    [f"link add {name} type veth peer name {ROUTER_UPLINK} netns {router}"],
                    pass_fds=(self._router_fd,),
                )
            except NetworkSetupError as exc:
                if "File exists" in str(exc):
                    continue
                raise
            self.uplink, self.uplink_n = name, n
            break
        else:
            raise NetworkSetupError(f"no free uplink interface name {UPLINK_PREFIX}<n> left")
        host, _ = self.addressing.uplink(self.uplink_n)
        try:
            write_sysctl(f"net.ipv6.conf.{self.uplink}.disable_ipv6", "1")
        except OSError:
            pass  # IPv6 may be off altogether
        self.ip.batch([f"addr add {host}/30 dev {self.uplink}", f"link set {self.uplink} up"])

    def _configure_router(self, policy: EgressPolicy) -> None:
        assert self._router_nft is not None
        host, router = self.addressing.uplink(self.uplink_n)
        setns(self._router_fd)
        try:
            self.ip.batch(
                [
                    "link set lo up",
                    *([f"addr add {self.addressing.relay}/32 dev lo"] if self.relayed else []),
                    f"addr add {router}/30 dev {ROUTER_UPLINK}",
                    f"link set {ROUTER_UPLINK} up",
                    f"route add default via {host} dev {ROUTER_UPLINK}",
                ]
            )
        finally:
            setns(self._host_fd)
        direct = [] if self.relayed else self.upstream
        relay = self.addressing.relay if self.relayed else None
        self._router_nft.run(
            router_ruleset(policy, direct, self._host_addresses, self.addressing.subnet, relay)
        )

    def _add_host_table(self, guard_forwarding: bool) -> None:
        """This process's table on the host: owned by it where the kernel can (5.12+), else
        removed by ``teardown``."""
        assert self._host_nft is not None
        table = HOST_TABLE_PREFIX + (self.uplink or "")
        router_address = self.addressing.uplink(self.uplink_n)[1]
        direct = [] if self.relayed else self.upstream
        arguments = (
            table,
            self.uplink or "",
            router_address,
            self.addressing.subnet,
            direct,
            guard_forwarding,
        )
        self._remove_stale_host_tables()
        # a table of this name is a crashed process's: the name follows the uplink, ours now
        try:
            self._host_nft.run(f"delete table inet {table}")
        except NetworkSetupError:
            pass
        try:
            if not self._owned_table:
                raise NetworkSetupError("owned tables not wanted")
            self._host_nft.run(host_ruleset(*arguments))
        except NetworkSetupError as exc:
            log.info(
                "sandbox network: no owned nftables table (%s); it is removed on stop instead", exc
            )
            self._host_nft.run(host_ruleset(*arguments, owned=False))
            self._host_table = table

    def _start_relay(self) -> None:
        """The relay's sockets are made in the router namespace; it asks from this one."""
        setns(self._router_fd)
        try:
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            udp.bind((self.addressing.relay, 53))
            tcp.bind((self.addressing.relay, 53))
            tcp.listen(64)
        finally:
            setns(self._host_fd)
        self._relay = DnsRelay(list(self.upstream), udp, tcp)
        self._relay.start()

    def _remove_stale_host_tables(self) -> None:
        """Remove tables of ours whose uplink is gone (left by a crash on a kernel without
        owned tables)."""
        assert self._host_nft is not None
        try:
            listing = self._host_nft.run("list tables")
            links = {
                link["ifname"] for link in json.loads(self.ip.run(["-j", "link", "show"]) or "[]")
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
            links = json.loads(self.ip.run(["-j", "link", "show", "type", "veth"]) or "[]")
        except (NetworkSetupError, ValueError, subprocess.SubprocessError):
            return True  # when unsure, leave forwarding on
        for link in links:
            name = link.get("ifname", "")
            if (
                name != self.uplink
                and name.startswith(UPLINK_PREFIX)
                and name[len(UPLINK_PREFIX) :].isdigit()
            ):
                return True
        return False
