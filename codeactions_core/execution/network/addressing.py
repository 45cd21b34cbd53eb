"""The layout of the sandbox network: its interfaces' names and its subnet's addresses."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from codeactions_core.execution.network.errors import NetworkSetupError

UPLINK_PREFIX = "ca"
"""The host end of a server process's uplink: ``ca<n>``."""
ROUTER_UPLINK = "up0"
"""The router's end of the uplink."""
SLOT_PREFIX = "s"
"""The router's end of slot ``k``'s veth: ``s<k>``."""


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
