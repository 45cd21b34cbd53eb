"""The name servers runs ask: the configured or the host's, directly or through a relay."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import Path

from codeactions_core.execution.network.errors import NetworkSetupError

MAX_NAMESERVERS = 3  # what the resolver of glibc, musl and Go reads


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


def choose_nameservers(configured: Iterable[str]) -> tuple[list[str], bool]:
    """The resolvers that answer the runs (``configured``, else the host's), and whether runs
    ask them through a relay: the IPv4 resolvers they can reach directly; when there are none
    but the host has others (loopback, IPv6), those, relayed."""
    asked = list(configured) or host_nameservers()
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
    return (direct or relayed)[:MAX_NAMESERVERS], not direct and bool(relayed)
