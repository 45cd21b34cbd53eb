"""Where outbound connections of untrusted work may go: the public internet yes, the inside no.

One policy for user code in the sandbox (``SANDBOX_NETWORK=egress``, enforced by
nftables outside the run's reach) and for the flow steps that make HTTP calls from
the server's own process (checked after DNS resolution, before connecting).
Pure data and the standard library's ``ipaddress``: no I/O here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

DENIED_RANGES: tuple[str, ...] = (
    # IPv4
    "0.0.0.0/8",  # "this network"
    "10.0.0.0/8",  # RFC 1918
    "100.64.0.0/10",  # CGNAT, shared address space
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
    "172.16.0.0/12",  # RFC 1918
    "192.0.0.0/24",  # IETF protocol assignments
    "192.0.2.0/24",  # TEST-NET-1 (documentation)
    "192.88.99.0/24",  # 6to4 relay anycast
    "192.168.0.0/16",  # RFC 1918
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # TEST-NET-2 (documentation)
    "203.0.113.0/24",  # TEST-NET-3 (documentation)
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, and 255.255.255.255 broadcast
    # IPv6
    "::/128",  # unspecified
    "::1/128",  # loopback
    "::ffff:0:0/96",  # IPv4-mapped: would smuggle any IPv4 address
    "64:ff9b::/96",  # NAT64 well-known prefix: the same
    "64:ff9b:1::/48",  # local-use NAT64
    "100::/64",  # discard-only
    "2001:db8::/32",  # documentation
    "2002::/16",  # 6to4: embeds IPv4 addresses
    "fc00::/7",  # unique local (ULA), incl. fd00:ec2::254 (cloud metadata)
    "fe80::/10",  # link-local
    "fec0::/10",  # site-local (deprecated)
    "ff00::/8",  # multicast
)
"""Ranges no run and no flow step may reach unless an operator allows them explicitly."""


class PolicyError(ValueError):
    """An allow or deny entry that is neither a CIDR nor ``host:port``."""


@dataclass(frozen=True)
class Rule:
    """One entry of an allow or deny list: a network, and a port or every port (``None``)."""

    network: Network
    port: int | None = None

    def matches(self, address: Address, port: int | None) -> bool:
        if address.version != self.network.version or address not in self.network:
            return False
        return self.port is None or self.port == port

    def __str__(self) -> str:
        if self.port is None:
            return str(self.network)
        host = self.network.network_address
        return f"[{host}]:{self.port}" if host.version == 6 else f"{host}:{self.port}"


def parse_rule(term: str) -> Rule:
    """``10.0.0.0/8``, ``10.1.2.3``, ``10.1.2.3:443``, ``[fd00::1]:443`` or ``fd00::/8``."""
    text = term.strip()
    port: int | None = None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise PolicyError(f"{term!r}: expected [address]:port")
            port = _port(rest[1:], term)
        text = host
    elif text.count(":") == 1:
        text, raw_port = text.split(":")
        port = _port(raw_port, term)
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise PolicyError(
            f"{term!r}: expected a CIDR such as 10.0.0.0/8 or an address:port"
        ) from None
    return Rule(network, port)


def _port(raw: str, term: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise PolicyError(f"{term!r}: the port must be a number from 1 to 65535")
    return int(raw)


def unmapped(address: Address) -> Address:
    """An IPv4-mapped IPv6 address as the IPv4 address it is; any other unchanged."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class EgressPolicy:
    """Denied: the built-in ranges plus ``deny``; allowed: everything else, and ``allow``
    (which wins over every deny rule: an operator's explicit opening)."""

    allow: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = ()
    denied_ranges: tuple[Network, ...] = field(
        default_factory=lambda: tuple(ipaddress.ip_network(cidr) for cidr in DENIED_RANGES)
    )

    @classmethod
    def from_terms(cls, allow: Iterable[str] = (), deny: Iterable[str] = ()) -> EgressPolicy:
        """Parse settings terms; PolicyError names a bad one."""
        return cls(allow=tuple(map(parse_rule, allow)), deny=tuple(map(parse_rule, deny)))

    def allows(self, address: str | Address, port: int | None = None) -> bool:
        """Whether a connection to ``address`` (and ``port``) may be made."""
        ip = unmapped(ipaddress.ip_address(address) if isinstance(address, str) else address)
        if any(rule.matches(ip, port) for rule in self.allow):
            return True
        if any(rule.matches(ip, port) for rule in self.deny):
            return False
        return not any(ip.version == net.version and ip in net for net in self.denied_ranges)

    def reason(self, address: str | Address, port: int | None = None) -> str:
        """Why a connection is refused, for an error message ("" when it is allowed)."""
        ip = unmapped(ipaddress.ip_address(address) if isinstance(address, str) else address)
        if self.allows(ip, port):
            return ""
        for rule in self.deny:
            if rule.matches(ip, port):
                return f"{ip} is denied by the egress policy ({rule})"
        net = next(net for net in self.denied_ranges if ip.version == net.version and ip in net)
        return f"{ip} is in {net}, which the egress policy denies (not a public address)"
