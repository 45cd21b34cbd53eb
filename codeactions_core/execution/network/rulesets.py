"""The nftables rulesets of the sandbox network: the router's (the egress policy) and the host's."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from codeactions_core.egress import EgressPolicy, Rule
from codeactions_core.execution.network.addressing import ROUTER_UPLINK, SLOT_PREFIX, UPLINK_PREFIX

ROUTER_TABLE = "codeactions"
HOST_TABLE_PREFIX = "codeactions_"


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
                (
                    f'    iifname "{SLOT_PREFIX}*" ip daddr {relay}'
                    " meta l4proto { tcp, udp } th dport 53 accept"
                )
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
