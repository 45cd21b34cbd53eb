"""Drive a SandboxNetwork from inside a test's server namespace, as the zygote's children would.

``python -m tests.support.netprobe SPEC_JSON`` (inside ``cat-srv-<tag>``,
as root) starts a ``SandboxNetwork``, forks children that ``setns`` into its
slots, drop to uid 65534 and try connections, and prints one JSON line of what
happened. Actions:

``probe``
    connections from a slot (``targets``), name resolution through the sandbox's
    resolv.conf, a listener in one slot tried from another slot, from the server
    namespace and from the world; then ``stop()``.
``hold``
    start, print ``{"ready": ...}``, then wait to be killed (the SIGKILL test).
``cycle``
    start and stop (a restart after a crash).
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import json
import logging
import os
import select
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Any

from codeactions_core.egress import DENIED_RANGES, EgressPolicy
from codeactions_core.execution.network import CLONE_NEWNET, NetworkSlot, SandboxNetwork, setns

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
NOBODY = 65534
HOST_LISTENER_PORT = 18000
SLOT_LISTENER_PORT = 9000


def classify(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timeout"
    if isinstance(exc, OSError) and exc.errno in (
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EACCES,
    ):
        return "unreachable"
    return f"error: {type(exc).__name__}: {exc}"


def try_tcp(host: str, port: int, timeout: float) -> str:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
        except OSError as exc:
            return classify(exc)
    return "connected"


def try_http(url: str, timeout: float) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return f"{response.status} {response.read().decode()}"
    except OSError as exc:
        reason = getattr(exc, "reason", exc)
        return classify(reason if isinstance(reason, BaseException) else exc)


def resolve(name: str) -> str:
    try:
        return ",".join(
            sorted({info[4][0] for info in socket.getaddrinfo(name, 80, proto=socket.IPPROTO_TCP)})
        )
    except OSError as exc:
        return f"error: {exc}"


def mount_resolv_conf(text: str) -> None:
    """A private mount namespace with ``text`` bound over /etc/resolv.conf."""
    with tempfile.NamedTemporaryFile(
        "w", delete=False, dir="/dev/shm" if os.path.isdir("/dev/shm") else None
    ) as handle:
        handle.write(text)
    os.chmod(handle.name, 0o644)
    if _libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    if _libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "mount private")
    if _libc.mount(handle.name.encode(), b"/etc/resolv.conf", None, MS_BIND, None) != 0:
        raise OSError(ctypes.get_errno(), "bind resolv.conf")
    os.unlink(handle.name)


def drop_to_nobody() -> None:
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)


def in_child(
    work,
    *,
    netns_fd: int | None = None,
    netns_path: str | None = None,
    resolv: str | None = None,
    ready: int | None = None,
) -> int:
    """Fork a child that joins a namespace, drops to nobody and writes ``work()``'s JSON to a pipe;
    the read end (``ready``: a pipe end the child closes once set up)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            if netns_path:
                netns_fd = os.open(netns_path, os.O_RDONLY)
            if netns_fd is not None:
                setns(netns_fd)
            if resolv is not None:
                mount_resolv_conf(resolv)
            drop_to_nobody()
            result = work()
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            result = {"child_error": f"{type(exc).__name__}: {exc}"}
        os.write(write_end, json.dumps(result).encode())
        os._exit(0)
    os.close(write_end)
    return read_end


def collect(read_end: int) -> Any:
    data = b""
    while chunk := os.read(read_end, 65536):
        data += chunk
    os.close(read_end)
    os.wait()
    return json.loads(data)


class HostListener:
    """A listener on every address of the server namespace, counting what it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", HOST_LISTENER_PORT))
        self.sock.listen(16)
        self.accepted: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, peer = self.sock.accept()
            except OSError:
                return
            self.accepted.append(peer[0])
            connection.close()


def network_from(spec: dict) -> SandboxNetwork:
    options = spec["network"]
    SandboxNetwork.owned_tables = not options.get("unowned", False)
    policy = None
    if options.get("global"):  # ranges the test declares global (so deny entries can be tried)
        kept = [net for net in DENIED_RANGES if net not in options["global"]]
        base = EgressPolicy.from_terms(options.get("allow", ()), options.get("deny", ()))
        policy = EgressPolicy(
            base.allow, base.deny, tuple(ipaddress.ip_network(net) for net in kept)
        )
    return SandboxNetwork(
        mode=options.get("mode", "egress"),
        allow=options.get("allow", ()),
        deny=options.get("deny", ()),
        dns=options.get("dns", ()),
        subnet=options.get("subnet", "10.254.0.0/16"),
        spare=options.get("spare", 2),
        state_dir=options["state_dir"],
        policy=policy,
    )


def serve_local_dns(address: str) -> None:
    """A name server on this namespace's loopback (as systemd-resolved's 127.0.0.53 is)."""
    from tests.support.netns import DNS_NAME, PUBLIC, dns_answer

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 53))

    def serve() -> None:
        while True:
            query, peer = sock.recvfrom(4096)
            sock.sendto(dns_answer(query, {DNS_NAME: PUBLIC}), peer)

    threading.Thread(target=serve, daemon=True).start()


def probe(spec: dict) -> dict:
    if spec.get("local_dns"):
        serve_local_dns(spec["local_dns"])
    network = network_from(spec)
    started = time.monotonic()
    network.start()
    report: dict[str, Any] = {
        "protections": network.protections(),
        "start_seconds": time.monotonic() - started,
        "uplink": network.uplink,
        "resolv_conf": network.resolv_conf(),
    }
    if network.mode != "egress":
        network.stop()
        return report
    host_listener = HostListener()
    first, second = network.acquire(), network.acquire()
    report["slots"] = [first.address, second.address]
    timeout = spec.get("timeout", 1.0)
    targets = [(host, int(port)) for host, port in spec.get("targets", [])]
    router = network._router
    uplink_host = router.addressing.uplink(router.uplink_n)[0] if router else ""
    targets += [
        (uplink_host, HOST_LISTENER_PORT),
        (spec.get("server_address", "127.0.0.1"), HOST_LISTENER_PORT),
        (second.address or "", SLOT_LISTENER_PORT),
    ]

    def connections() -> dict:
        return {
            "tcp": {f"{host}:{port}": try_tcp(host, port, timeout) for host, port in targets},
            "http": {url: try_http(url, 3) for url in spec.get("urls", [])},
            "resolve": {name: resolve(name) for name in spec.get("names", [])},
            "uid": os.getuid(),
        }

    # A listener in the second slot; everyone else tries to reach it.
    done_read, done_write = os.pipe()
    ready_read, ready_write = os.pipe()

    def listen() -> dict:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("0.0.0.0", SLOT_LISTENER_PORT))
            sock.listen(8)
            os.close(ready_write)
            readable = select.select([sock, done_read], [], [], 30)[0]
            return {"accepted": sock in readable}

    listener = in_child(listen, netns_fd=second.fd)
    os.close(ready_write)
    select.select([ready_read], [], [], 10)  # the listener is bound once the child closes its end
    os.close(ready_read)
    from_slot = in_child(connections, netns_fd=first.fd, resolv=network.resolv_conf())
    from_world = in_child(
        lambda: {"tcp": try_tcp(second.address or "", SLOT_LISTENER_PORT, timeout)},
        netns_path=f"/run/netns/{spec['world_netns']}",
    )
    from_host = try_tcp(second.address or "", SLOT_LISTENER_PORT, timeout)
    report["from_slot"] = collect(from_slot)
    report["from_world"] = collect(from_world)["tcp"]
    report["from_host"] = from_host
    os.write(done_write, b"x")
    report["slot_listener"] = collect(listener)
    report["host_listener_accepted"] = list(host_listener.accepted)
    # Reuse: a released slot comes back as it is.
    network.release(first)
    network.release(second)
    again = [network.acquire() for _ in range(2)]
    report["reused"] = sorted(slot.index for slot in again) == sorted([first.index, second.index])
    for slot in again:
        network.release(slot)
    tries = []
    for _ in range(spec.get("acquire_rounds", 200)):
        began = time.perf_counter()
        slot = network.acquire()
        tries.append(time.perf_counter() - began)
        network.release(slot)
    report["acquire_max_seconds"] = max(tries) if tries else 0
    report["acquire_median_seconds"] = sorted(tries)[len(tries) // 2] if tries else 0
    report["exclusive"] = exclusive(
        network, spec.get("threads", 8), spec.get("acquire_rounds", 200) // 4
    )
    network.stop()
    report["protections_after_stop"] = network.protections()
    return report


def exclusive(network: SandboxNetwork, threads: int, rounds: int) -> bool:
    """Many threads taking and giving back slots: no slot is ever held twice at once."""
    held: set[int] = set()
    lock = threading.Lock()
    clashes: list[int] = []

    def work() -> None:
        for _ in range(rounds):
            slot = network.acquire()
            with lock:
                if slot.index in held:
                    clashes.append(slot.index)
                held.add(slot.index)
            time.sleep(0.0005)  # hold it a moment, as a run would
            with lock:
                held.discard(slot.index)
            network.release(slot)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return not clashes


def main() -> None:
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    "".encode("idna")  # the codec, imported before the children drop to a uid that may not read it
    spec = json.loads(sys.argv[1])
    action = spec.get("action", "probe")
    if action == "probe":
        print(json.dumps(probe(spec)), flush=True)
    elif action == "hold":
        network = network_from(spec)
        network.start()
        slot: NetworkSlot = network.acquire()
        signal.signal(
            signal.SIGTERM, lambda *_: sys.exit(0)
        )  # a clean exit: atexit stops the network
        print(
            json.dumps(
                {"ready": network.protections(), "uplink": network.uplink, "slot": slot.address}
            ),
            flush=True,
        )
        while True:
            time.sleep(3600)  # held until the test ends this process
    elif action == "cycle":
        network = network_from(spec)
        network.start()
        protections = network.protections()
        network.stop()
        print(json.dumps({"protections": protections}), flush=True)


__all__ = ["CLONE_NEWNET", "main"]

if __name__ == "__main__":
    main()
