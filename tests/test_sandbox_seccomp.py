"""Kernel attack surface through a real ``codeactions serve``: nested user namespaces,
io_uring, keyrings, mounts, ptrace and non-IP sockets are refused to user code by the
sandbox's seccomp filter, with the errno in the run's result. After every case the
server answers /healthz promptly and runs normal code."""

from __future__ import annotations

import uuid

import pytest

from codeactions_core.execution import seccomp
from codeactions_core.testing.server import CodeClient, start_server

AVAILABLE, WHY = seccomp.available()
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not AVAILABLE, reason=f"seccomp unavailable: {WHY}"),
]

TOKEN = f"token-{uuid.uuid4().hex}"

# One Python code: the attack named by the ``attack`` parameter; the result maps each
# step to the errno name it got (or "ok" / the value when the kernel let it through).
PYTHON_ATTACKS = r'''
import ctypes, errno, os, signal, socket
libc = ctypes.CDLL(None, use_errno=True)
NR = {"io_uring_setup": 425, "keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321,
      "userfaultfd": 323, "perf_event_open": 298, "clone3": 435, "personality": 135}
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000


def outcome(result):
    """The errno's name when ``result`` is -1, else "ok"."""
    if result == -1:
        return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
    return "ok"


def raw(name, *args):
    return outcome(libc.syscall(
        ctypes.c_long(NR[name]), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args]))


def make_socket(family, kind, protocol):
    try:
        socket.socket(family, kind, protocol).close()
        return "ok"
    except OSError as error:
        return errno.errorcode.get(error.errno, str(error.errno))


def nested_userns():
    steps = {"unshare": outcome(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS))}
    os.makedirs("/tmp/target", exist_ok=True)
    steps["mount"] = outcome(libc.mount(b"none", b"/tmp/target", b"tmpfs", 0, None))
    # a missing target: ENOENT without a filter (the path is looked up first), EPERM with it
    steps["mount_missing_target"] = outcome(
        libc.mount(b"none", b"/nonexistent-target", b"tmpfs", 0, None))
    return steps


def ptrace():
    ready, told = os.pipe()
    victim = os.fork()
    if victim == 0:
        libc.prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: traceable by its parent, were ptrace allowed
        os.write(told, b"x")
        signal.pause()
        os._exit(0)
    os.read(ready, 1)
    try:
        return {
            "attach": outcome(libc.ptrace(ctypes.c_long(16), ctypes.c_long(victim), None, None)),
            "process_vm_readv": outcome(libc.process_vm_readv(victim, None, 0, None, 0, 0)),
        }
    finally:
        os.kill(victim, signal.SIGKILL)
        os.waitpid(victim, 0)


ATTACKS = {
    "nested_userns": nested_userns,
    "io_uring": lambda: {
        "io_uring_setup": raw("io_uring_setup", 8, ctypes.create_string_buffer(120))
    },
    "keyrings": lambda: {
        "keyctl": raw("keyctl", 0, -4, 1),  # KEYCTL_GET_KEYRING_ID, the user keyring, create
        "add_key": raw("add_key", b"user", b"secret", b"s3cret", 6, -3),  # into the session keyring
        "request_key": raw("request_key", b"user", b"secret", None, 0),
    },
    "sockets": lambda: {
        "netlink": make_socket(socket.AF_NETLINK, socket.SOCK_RAW, 0),
        "packet": make_socket(socket.AF_PACKET, socket.SOCK_RAW, 0),
        "inet": make_socket(socket.AF_INET, socket.SOCK_STREAM, 0),
        "unix": make_socket(socket.AF_UNIX, socket.SOCK_STREAM, 0),
    },
    "ptrace": ptrace,
    "kernel_surface": lambda: {
        "bpf": raw("bpf", 0, ctypes.create_string_buffer(128), 128),
        "userfaultfd": raw("userfaultfd", 1),  # UFFD_USER_MODE_ONLY: allowed unprivileged
        "perf_event_open": raw("perf_event_open", ctypes.create_string_buffer(128), 0, -1, -1, 0),
        "personality_no_aslr": raw("personality", 0x0040000),
        "clone3": raw("clone3", None, 0),
    },
}


def Run(engine):
    engine.result.set(ATTACKS[engine.params.get("attack")](), content_type="json")
'''

PYTHON_EXPECTED = {
    "nested_userns": {"unshare": "EPERM", "mount": "EPERM", "mount_missing_target": "EPERM"},
    "io_uring": {"io_uring_setup": "EPERM"},
    "keyrings": {"keyctl": "EPERM", "add_key": "EPERM", "request_key": "EPERM"},
    "sockets": {"netlink": "EAFNOSUPPORT", "packet": "EAFNOSUPPORT", "inet": "ok", "unix": "ok"},
    "ptrace": {"attach": "EPERM", "process_vm_readv": "EPERM"},
    "kernel_surface": {
        "bpf": "EPERM",
        "userfaultfd": "EPERM",
        "perf_event_open": "EPERM",
        "personality_no_aslr": "EPERM",
        "clone3": "ENOSYS",
    },
}

GO_ATTACKS = r"""package main

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"time"
	"unsafe"
)

// A copy of this binary started with this variable set only waits: the ptrace victim.
func init() {
	if os.Getenv("SECCOMP_TEST_VICTIM") == "1" {
		time.Sleep(30 * time.Second)
		os.Exit(0)
	}
}

func errnoName(err error) string {
	if err == nil {
		return "ok"
	}
	var number syscall.Errno
	if errors.As(err, &number) {
		switch number {
		case syscall.EPERM:
			return "EPERM"
		case syscall.ENOSYS:
			return "ENOSYS"
		case syscall.EAFNOSUPPORT:
			return "EAFNOSUPPORT"
		case syscall.ENOENT:
			return "ENOENT"
		case syscall.ESRCH:
			return "ESRCH"
		}
		return "errno " + number.Error()
	}
	return err.Error()
}

func rawErr(_, _ uintptr, number syscall.Errno) error {
	if number != 0 {
		return number
	}
	return nil
}

func bytePointer(text string) uintptr {
	pointer, _ := syscall.BytePtrFromString(text)
	return uintptr(unsafe.Pointer(pointer))
}

func socketErr(family, kind int) error {
	fd, err := syscall.Socket(family, kind, 0)
	if err == nil {
		syscall.Close(fd)
	}
	return err
}

func victim() *exec.Cmd {
	command := exec.Command("/proc/self/exe")
	command.Env = []string{"SECCOMP_TEST_VICTIM=1"}
	return command
}

// A copy of this program in a new user namespace: clone with CLONE_NEWUSER (as
// syscall.Unshare cannot be, from a multithreaded Go program).
func cloneNewUser() string {
	command := victim()
	command.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
	}
	err := command.Start()
	if err == nil {
		command.Process.Kill()
		command.Wait()
	}
	return errnoName(err)
}

func ptraceVictim() string {
	command := victim()
	if err := command.Start(); err != nil {
		return "no victim: " + err.Error()
	}
	defer command.Wait()
	defer command.Process.Kill()
	return errnoName(syscall.PtraceAttach(command.Process.Pid))
}

func Run(engine *Engine) {
	params := make([]byte, 120)
	result := map[string]string{
		"unshare_newuser": errnoName(
			syscall.Unshare(syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS)),
		"clone_newuser": cloneNewUser(),
		"mount_missing_target": errnoName(
			syscall.Mount("none", "/nonexistent-target", "tmpfs", 0, "")),
		// SYS_IO_URING_SETUP (425) is newer than the frozen syscall package
		"io_uring_setup": errnoName(rawErr(
			syscall.RawSyscall(425, 8, uintptr(unsafe.Pointer(&params[0])), 0))),
		"keyctl": errnoName(rawErr(syscall.Syscall(syscall.SYS_KEYCTL, 0, ^uintptr(3), 1))),
		"add_key": errnoName(rawErr(syscall.Syscall6(syscall.SYS_ADD_KEY, bytePointer("user"),
			bytePointer("secret"), bytePointer("s3cret"), 6, ^uintptr(2), 0))),
		"netlink":       errnoName(socketErr(syscall.AF_NETLINK, syscall.SOCK_RAW)),
		"packet":        errnoName(socketErr(syscall.AF_PACKET, syscall.SOCK_RAW)),
		"inet":          errnoName(socketErr(syscall.AF_INET, syscall.SOCK_STREAM)),
		"ptrace_attach": ptraceVictim(),
	}
	engine.Result.Set(result, 200, "json")
}
"""

GO_EXPECTED = {
    "unshare_newuser": "EPERM",
    "clone_newuser": "EPERM",
    "mount_missing_target": "EPERM",
    "io_uring_setup": "EPERM",
    "keyctl": "EPERM",
    "add_key": "EPERM",
    "netlink": "EAFNOSUPPORT",
    "packet": "EAFNOSUPPORT",
    "inet": "ok",
    "ptrace_attach": "EPERM",
}

# Node cannot make arbitrary system calls (no unshare, keyctl, io_uring or ptrace from
# JavaScript); what it can reach is the socket-family rule: listing interfaces needs netlink.
JAVASCRIPT_ATTACKS = r"""
exports.Run = (engine) => {
  let interfaces;
  try {
    interfaces = Object.keys(require("os").networkInterfaces()).length ? "listed" : "empty";
  } catch (error) {
    const refused = error.errno === 97 || error.code === "EAFNOSUPPORT";
    interfaces = refused ? "EAFNOSUPPORT" : error.message;
  }
  engine.result.set({ interfaces }, 200, "json");
};
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(
        {
            "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path_factory.mktemp("data")),
            "FLOWS_CODE_ACTIONS_WORKER_POOL_SIZE": "4",
            "FLOWS_CODE_ACTIONS_AUTH_TOKEN": TOKEN,
        },
        tmp_path_factory.mktemp("logs"),
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(server) -> CodeClient:
    return CodeClient(server, TOKEN)


@pytest.fixture(autouse=True)
def server_survives(client):
    yield
    client.assert_still_serving()


def require_runtime(server, language: str) -> None:
    CodeClient(server, TOKEN).require_runtime(language)


@pytest.fixture(scope="module")
def python_attacks(client) -> str:
    return client.create(PYTHON_ATTACKS)


@pytest.mark.parametrize("attack", sorted(PYTHON_EXPECTED))
def test_python_attacks_get_errnos(client, python_attacks, attack):
    answer = client.call(python_attacks, attack=attack)
    assert answer.status_code == 200, answer.text
    assert answer.json() == PYTHON_EXPECTED[attack]


def test_go_attacks_get_errnos(client, server):
    require_runtime(server, "go")
    answer = client.call(client.create(GO_ATTACKS, language="go", timeout=30))
    assert answer.status_code == 200, answer.text
    assert answer.json() == GO_EXPECTED


def test_javascript_cannot_open_netlink_sockets(client, server):
    require_runtime(server, "javascript")
    answer = client.call(client.create(JAVASCRIPT_ATTACKS, language="javascript"))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"interfaces": "EAFNOSUPPORT"}
