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

Modules: ``sandbox_network`` (the modes and the pool of slots), ``router`` (the egress
plumbing: router namespace, uplink, host table, slot namespaces), ``rulesets`` (the nftables
texts), ``nftables`` (libnftables), ``addressing`` (interface names and addresses),
``nameservers``, ``dns_relay``, ``forwarding`` (the host's ip_forward), ``namespaces``
(threads' namespaces and sysctls), ``ip`` (the ``ip`` command), ``errors``.
"""

from codeactions_core.execution.network.addressing import Addressing
from codeactions_core.execution.network.errors import NetworkSetupError
from codeactions_core.execution.network.namespaces import CLONE_NEWNET, on_fresh_thread, setns
from codeactions_core.execution.network.rulesets import host_ruleset, router_ruleset
from codeactions_core.execution.network.sandbox_network import (
    HOST_SLOT,
    NONE_SLOT,
    NetworkSlot,
    SandboxNetwork,
)

__all__ = [
    "CLONE_NEWNET",
    "HOST_SLOT",
    "NONE_SLOT",
    "Addressing",
    "NetworkSetupError",
    "NetworkSlot",
    "SandboxNetwork",
    "host_ruleset",
    "on_fresh_thread",
    "router_ruleset",
    "setns",
]
