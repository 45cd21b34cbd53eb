"""The sandbox's seccomp filter, without a server: installed in forked children of the
test process, it denies the kernel's attack surface with clean errnos, and ordinary
Python, Node and Go programs (threads, fork, epoll, sockets, timers) still run."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from codeactions_core.execution import linux, seccomp
from codeactions_core.settings import SuiteEnvironment

OK, REASON = seccomp.available()
pytestmark = pytest.mark.skipif(not OK, reason=f"seccomp unavailable here: {REASON}")

PROGRAM = seccomp.build_filter() if OK else b""
ALL_ONES = ctypes.c_long(-1)
libc = ctypes.CDLL(None, use_errno=True)


def syscall(name: str, *args: int | bytes | None | ctypes._SimpleCData) -> int:
    """A raw system call by name: its result, or minus its errno."""
    wrapped = [ctypes.c_long(arg) if isinstance(arg, int) else arg for arg in args]
    result = libc.syscall(ctypes.c_long(seccomp.syscall_number(name)), *wrapped)
    return -ctypes.get_errno() if result == -1 else result


def enter_filter() -> None:
    """What a sandboxed child does: no_new_privs, then the filter."""
    linux.set_no_new_privs()
    seccomp.install(PROGRAM)


def read_with_deadline(fd: int, seconds: float) -> bytes:
    """Everything written to ``fd`` until its writers close it, within ``seconds``."""
    deadline = time.monotonic() + seconds
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError(f"no end of file within {seconds} s; got {data[:200]!r}")
        chunk = os.read(fd, 65536)
        if not chunk:
            return data
        data += chunk


def in_filtered_child(work: Callable[[], object], seconds: float = 10.0) -> tuple[object, int]:
    """Run ``work`` in a forked child under the filter: its JSON-able answer and wait status."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            enter_filter()
            answer = {"answer": work()}
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        os.write(write_end, json.dumps(answer).encode())
        os._exit(0)
    os.close(write_end)
    try:
        data = read_with_deadline(read_end, seconds)
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)
        raise
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    if not data:  # killed before it answered
        return None, status
    report = json.loads(data)
    if "error" in report:
        raise AssertionError(f"the filtered child failed: {report['error']}")
    return report["answer"], status


def test_available_and_program_shape():
    assert OK, REASON
    assert len(PROGRAM) % 8 == 0 and 0 < len(PROGRAM) // 8 < 4096
    assert "unshare" in seccomp.DENIED and "io_uring_setup" in seccomp.DENIED


def test_probe_confirms_the_filter_is_enforced():
    assert seccomp.probe(PROGRAM) == (True, "filter installed and enforced")


def test_every_always_denied_call_fails_with_eperm():
    def work() -> dict:
        os.setsid()  # no controlling terminal: vhangup could do nothing even if let through
        return {name: syscall(name, *[ALL_ONES] * 6) for name in seccomp.ALWAYS_DENIED}

    answer, _ = in_filtered_child(work)
    assert answer == {name: -errno.EPERM for name in seccomp.ALWAYS_DENIED}


def test_the_attacks_of_the_audit_fail_with_clean_errnos():
    def work() -> dict:
        results = {
            "unshare_newuser": syscall("unshare", linux.CLONE_NEWUSER),
            "setns": syscall("setns", os.open("/proc/self/ns/net", os.O_RDONLY), 0),
            "mount_tmpfs": syscall(
                "mount", b"none", b"/nonexistent-seccomp-test", b"tmpfs", 0, None
            ),
            "keyctl_session": syscall("keyctl", 0, ctypes.c_long(-3), 0),  # KEYCTL_GET_KEYRING_ID
            "add_key": syscall("add_key", b"user", b"seccomp-test", b"x", 1, ctypes.c_long(-2)),
            "bpf_map_create": syscall("bpf", 0, ctypes.create_string_buffer(128), 128),
            "io_uring_setup": syscall("io_uring_setup", 8, ctypes.create_string_buffer(120)),
            "userfaultfd": syscall("userfaultfd", 0),
            "perf_event_open": syscall(
                "perf_event_open", ctypes.create_string_buffer(128), 0, -1, -1, 0
            ),
            "personality_no_aslr": syscall("personality", 0x0040000),
            "clone3": syscall("clone3", None, 0),  # EINVAL unfiltered: the size is too small
        }
        try:
            linux.clone_process(linux.CLONE_NEWUSER)  # a child would exit at once below
            os._exit(0)
        except OSError as exc:
            results["clone_newuser"] = -exc.errno
        for flag in seccomp.CLONE_NAMESPACES[1:]:  # CLONE_NEWTIME is clone3/unshare only
            try:
                if linux.clone_process(flag) == 0:
                    os._exit(0)
                results[f"clone_{flag:#x}"] = "cloned"
            except OSError as exc:
                results[f"clone_{flag:#x}"] = -exc.errno
        victim = os.fork()  # a plain fork still works; tracing it does not
        if victim == 0:
            signal.pause()  # the victim of the ptrace attempt; killed below
            os._exit(0)
        results["ptrace_attach"] = syscall("ptrace", 16, victim, 0, 0)  # PTRACE_ATTACH
        results["process_vm_readv"] = syscall("process_vm_readv", victim, None, 0, None, 0, 0)
        os.kill(victim, signal.SIGKILL)
        os.waitpid(victim, 0)
        return results

    answer, _ = in_filtered_child(work)
    eperm = -errno.EPERM
    assert answer.pop("clone3") == -errno.ENOSYS
    assert answer == dict.fromkeys(answer, eperm) and len(answer) == 20, answer


def test_ordinary_work_still_runs():
    def work() -> dict:
        import mmap
        import threading

        results: dict = {}
        seen = []
        threads = [threading.Thread(target=seen.append, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        results["threads"] = sorted(seen)
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        results["fork"] = os.WEXITSTATUS(os.waitpid(pid, 0)[1])
        results["exec"] = subprocess.run(
            ["/bin/echo", "hi"], check=False, capture_output=True, text=True
        ).stdout
        with mmap.mmap(-1, 1 << 20) as mapped:
            mapped[:5] = b"hello"
            results["mmap"] = mapped[:5].decode()
        epoll = select.epoll()
        left, right = socket.socketpair(socket.AF_UNIX)
        epoll.register(left, select.EPOLLIN)
        right.send(b"x")
        results["epoll"] = [fd == left.fileno() for fd, _ in epoll.poll(5)]
        server = socket.socket(socket.AF_INET)
        server.bind(("127.0.0.1", 0))
        server.listen()
        client = socket.create_connection(server.getsockname(), timeout=5)
        accepted, _ = server.accept()
        client.sendall(b"ping")
        results["tcp"] = accepted.recv(4).decode()
        for family in (socket.AF_INET6, socket.AF_UNIX):
            socket.socket(family, socket.SOCK_DGRAM).close()
        results["personality"] = [syscall("personality", 0), syscall("personality", 0xFFFFFFFF)]
        return results

    answer, _ = in_filtered_child(work)
    assert answer["threads"] == [0, 1, 2, 3]
    assert answer["fork"] == 7 and answer["exec"] == "hi\n" and answer["mmap"] == "hello"
    assert answer["epoll"] == [True] and answer["tcp"] == "ping"
    assert answer["personality"] == [0, 0]


def test_only_unix_and_ip_sockets():
    families = {
        "netlink": 16,
        "packet": 17,
        "unspec": 0,
        "ax25": 3,
        "ipx": 4,
        "appletalk": 5,
        "x25": 9,
        "decnet": 12,
        "bluetooth": 31,
        "vsock": 40,
        "alg": 38,
        "high_bits_inet": 1 << 32 | 2,
        "negative": -1,
    }

    def work() -> dict:
        results = {
            name: syscall("socket", family, socket.SOCK_DGRAM, 0)
            for name, family in families.items()
        }
        for name, family in (("unix", 1), ("inet", 2), ("inet6", 10)):
            fd = syscall("socket", family, socket.SOCK_STREAM, 0)
            results[name] = fd >= 0
            os.close(fd)
        return results

    answer, _ = in_filtered_child(work)
    assert answer == {
        **dict.fromkeys(families, -errno.EAFNOSUPPORT),
        "unix": True,
        "inet": True,
        "inet6": True,
    }


def test_other_architectures_system_calls_kill_the_process():
    def work() -> None:
        syscall("getpid", *[0] * 6)  # the native call is fine...
        libc.syscall(ctypes.c_long(0x40000000 | 39))  # ...its x32 twin is another ABI: killed

    answer, status = in_filtered_child(work)
    assert answer is None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


def test_install_is_one_cheap_syscall():
    """Median install cost over fresh children (reported in the test output)."""
    costs = []
    for _ in range(20):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            linux.set_no_new_privs()
            started = time.perf_counter_ns()
            seccomp.install(PROGRAM)
            os.write(write_end, str(time.perf_counter_ns() - started).encode())
            os._exit(0)
        os.close(write_end)
        costs.append(int(read_with_deadline(read_end, 10)))
        os.close(read_end)
        os.waitpid(pid, 0)
    median = sorted(costs)[len(costs) // 2] / 1000
    print(
        f"seccomp install: median {median:.1f} us over {len(costs)} children, "
        f"{len(PROGRAM) // 8} instructions"
    )
    assert median < 2000  # ~0.15-0.35 ms here; a regression guard, not a benchmark


def run_filtered(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """Exec ``argv`` from a child that installed the filter first."""
    return subprocess.run(
        argv,
        check=False,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        preexec_fn=enter_filter,
    )


NODE_SCRIPT = r"""
const { Worker } = require("worker_threads");
const fs = require("fs");
const net = require("net");
const dns = require("dns");
const { execFileSync } = require("child_process");
(async () => {
  const out = {};
  await new Promise((done) => setTimeout(done, 20));
  out.timer = true;
  out.worker = await new Promise((done, fail) => {
    const source = "require('worker_threads').parentPort.postMessage(6 * 7)";
    const worker = new Worker(source, { eval: true });
    worker.on("message", done);
    worker.on("error", fail);
  });
  out.hostsSync = fs.readFileSync("/etc/hosts", "utf8").includes("localhost");
  out.hostsAsync = (await fs.promises.readFile("/etc/hosts", "utf8")).includes("localhost");
  out.lookup = (await dns.promises.lookup("localhost", { hints: dns.ADDRCONFIG })).address;
  out.echo = await new Promise((done, fail) => {
    const server = net.createServer((socket) => socket.pipe(socket)).listen(0, "127.0.0.1", () => {
      const client = net.connect(server.address().port, "127.0.0.1", () => client.write("ping"));
      client.on("data", (data) => { client.end(); server.close(); done(data.toString()); });
      client.on("error", fail);
    });
  });
  out.child = execFileSync("/bin/echo", ["hi"]).toString();
  try {
    require("os").networkInterfaces();
    out.interfaces = "listed";
  } catch (error) {
    out.interfaces = error.code || String(error);
  }
  console.log(JSON.stringify(out));
})().catch((error) => { console.error(error); process.exit(1); });
"""


def test_node_runs_under_the_filter(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    # libuv tries io_uring when asked; it must fall back to its thread pool on EPERM
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "UV_USE_IO_URING": "1"}
    done = run_filtered([node, "-e", NODE_SCRIPT], env, tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert {
        key: out[key] for key in ("timer", "worker", "hostsSync", "hostsAsync", "echo", "child")
    } == {
        "timer": True,
        "worker": 42,
        "hostsSync": True,
        "hostsAsync": True,
        "echo": "ping",
        "child": "hi\n",
    }
    assert out["lookup"] in ("127.0.0.1", "::1")


GO_PROGRAM = r"""package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"sync"
	"time"
)

func main() {
	out := map[string]any{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	sum := 0
	for i := 1; i <= 50; i++ {
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			time.Sleep(5 * time.Millisecond)
			mu.Lock()
			sum += n
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	out["goroutines"] = sum
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		conn, err := listener.Accept()
		if err == nil {
			buffer := make([]byte, 4)
			n, _ := conn.Read(buffer)
			conn.Write(buffer[:n])
			conn.Close()
		}
	}()
	conn, err := net.Dial("tcp", listener.Addr().String())
	if err != nil {
		panic(err)
	}
	conn.Write([]byte("ping"))
	reply := make([]byte, 4)
	n, _ := conn.Read(reply)
	out["echo"] = string(reply[:n])
	addresses, err := net.LookupHost("localhost")
	out["lookup"] = len(addresses) > 0 && err == nil
	echoed, err := exec.Command("/bin/echo", "hi").Output()
	out["exec"] = string(echoed)
	if err != nil {
		out["exec"] = err.Error()
	}
	if _, err := net.Interfaces(); err != nil {
		out["interfaces"] = "refused"
	} else {
		out["interfaces"] = "listed"
	}
	json.NewEncoder(os.Stdout).Encode(out)
}
"""


def test_go_runs_under_the_filter(tmp_path):
    go = shutil.which("go")
    if go is None:
        if SuiteEnvironment.from_env().require_services:
            pytest.fail("go is not installed and CODEACTIONS_REQUIRE_SERVICES=1")
        pytest.skip("go is not installed (apt-get install -y golang-go)")
    (tmp_path / "main.go").write_text(GO_PROGRAM)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "GOCACHE": str(tmp_path / "cache"),
        "GOPATH": str(tmp_path / "gopath"),
        "GO111MODULE": "off",
        "CGO_ENABLED": "0",
    }
    built = subprocess.run(
        [go, "build", "-o", "program", "main.go"],
        check=False,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    done = run_filtered([str(tmp_path / "program")], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "goroutines": 1275,
        "echo": "ping",
        "lookup": True,
        "exec": "hi\n",
        "interfaces": "refused",
    }
