"""The sandbox's seccomp filter: libseccomp (through ctypes) compiles it, the kernel enforces it.

Stdlib only; imported by the zygote as a top-level module (``import seccomp``).
The zygote builds the filter once at start (``build_filter``: libseccomp's
exported BPF program for the native architecture); each sandboxed child
installs that program (``install``: one ``prctl``) after setting no_new_privs,
just before it execs or runs user code. Filters are inherited by every thread,
fork and exec, and cannot be removed.

The policy is "allow by default, deny the kernel's attack surface": what a
sandboxed run has no business doing fails with an errno (``EPERM``; ``ENOSYS``
for ``clone3``, whose flags live in memory a filter cannot read, so that glibc
and others fall back to ``clone``, whose flags it can; ``EAFNOSUPPORT`` for
socket families other than Unix, IPv4 and IPv6). Other architectures' system
calls (i386 ``int 0x80``, x32) kill the process.

Sockets: AF_NETLINK is refused, so interface listings fail (Go's
``net.Interfaces``, Node's ``os.networkInterfaces()``, Python's
``socket.if_nameindex()``); name resolution does not need it (Go's resolver
uses UDP/TCP only; glibc's ``getaddrinfo`` with ``AI_ADDRCONFIG``, which Node
uses, assumes both IPv4 and IPv6 when its netlink query fails).
"""

from __future__ import annotations

import ctypes
import errno
import os

_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl  # looked up once, in the zygote: children inherit it ready
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_FLTATR_ACT_BADARCH = 2
SCMP_FLTATR_CTL_NNP = 3
SCMP_FLTATR_CTL_OPTIMIZE = 8
SCMP_CMP_EQ = 4
SCMP_CMP_GT = 6
SCMP_CMP_MASKED_EQ = 7
NR_SCMP_ERROR = -1

PR_GET_SECCOMP = 21
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2
SECCOMP_GET_ACTION_AVAIL = 2
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000

AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NAMESPACES = (
    CLONE_NEWTIME,
    CLONE_NEWNS,
    CLONE_NEWCGROUP,
    CLONE_NEWUTS,
    CLONE_NEWIPC,
    CLONE_NEWUSER,
    CLONE_NEWPID,
    CLONE_NEWNET,
)

# Denied whatever their arguments, with EPERM.
ALWAYS_DENIED = (
    # namespaces and the mount table
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    # kernel keyrings
    "keyctl",
    "add_key",
    "request_key",
    # large kernel attack surfaces
    "bpf",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "userfaultfd",
    "perf_event_open",
    # other processes' memory and descriptors
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    # the machine's kernel, clock, devices, accounting
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "acct",
    "swapon",
    "swapoff",
    "reboot",
    "syslog",
    "quotactl",
    "lookup_dcookie",
    "open_by_handle_at",
    "name_to_handle_at",
    "nfsservctl",
    "vhangup",
    "settimeofday",
    "clock_settime",
    "adjtimex",
    "clock_adjtime",
    "iopl",
    "ioperm",
)

DENIED: tuple[str, ...] = (
    *ALWAYS_DENIED,
    "clone3 (ENOSYS)",
    "clone with CLONE_NEW* flags",
    "personality other than 0 and the 0xffffffff query",
    "socket other than AF_UNIX, AF_INET, AF_INET6 (EAFNOSUPPORT)",
)

# Syscalls numbered 424 and up have the same number on every architecture: a
# libseccomp too old to know one by name still gets it denied.
UNIFIED_NUMBERS = {
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "clone3": 435,
    "pidfd_getfd": 438,
    "mount_setattr": 442,
}


class _ArgCmp(ctypes.Structure):
    """libseccomp's struct scmp_arg_cmp."""

    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


class _SockFprog(ctypes.Structure):
    """The kernel's struct sock_fprog: a classic BPF program."""

    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_library: ctypes.CDLL | None = None
# The last program built, with its struct sock_fprog ready: what a child installs
# without allocating anything (children share the zygote's copy).
_prepared: tuple[bytes, ctypes.Array, _SockFprog] | None = None


def _seccomp_library() -> ctypes.CDLL:
    """libseccomp, loaded once, with the prototypes used here."""
    global _library
    if _library is None:
        library = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        library.seccomp_init.restype = ctypes.c_void_p
        library.seccomp_init.argtypes = [ctypes.c_uint32]
        library.seccomp_release.argtypes = [ctypes.c_void_p]
        library.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        library.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        library.seccomp_rule_add_array.argtypes = [
            ctypes.c_void_p,
            ctypes.c_uint32,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.POINTER(_ArgCmp),
        ]
        library.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        library.seccomp_version.restype = ctypes.POINTER(ctypes.c_uint * 3)
        _library = library
    return _library


def version() -> str:
    """libseccomp's version, e.g. ``2.5.4``."""
    return ".".join(str(part) for part in _seccomp_library().seccomp_version().contents)


def syscall_number(name: str) -> int:
    """The native number of a system call (negative when it does not exist on this architecture)."""
    number = _seccomp_library().seccomp_syscall_resolve_name(name.encode())
    if number == NR_SCMP_ERROR:
        if name not in UNIFIED_NUMBERS:
            raise OSError(errno.EINVAL, f"libseccomp does not know the system call {name}")
        number = UNIFIED_NUMBERS[name]
    return number


def _errno_action(code: int) -> int:
    """SCMP_ACT_ERRNO(code): the call fails with ``code``."""
    return SECCOMP_RET_ERRNO | (code & 0xFFFF)


def _masked(arg: int, mask: int, value: int) -> _ArgCmp:
    """The condition ``(argument & mask) == value``."""
    return _ArgCmp(arg, SCMP_CMP_MASKED_EQ, mask, value)


def _rules() -> list[tuple[str, int, list[_ArgCmp]]]:
    """(system call, action, conditions) of every rule; a rule matches when all its
    conditions hold, and libseccomp allows only one condition per argument in a rule."""
    eperm, enosys, eafnosupport = (
        _errno_action(code) for code in (errno.EPERM, errno.ENOSYS, errno.EAFNOSUPPORT)
    )
    rules = [(name, eperm, []) for name in ALWAYS_DENIED]
    rules.append(("clone3", enosys, []))
    # clone(flags, ...) on x86_64 and aarch64 alike: one rule per namespace flag.
    rules += [("clone", eperm, [_masked(0, flag, flag)]) for flag in CLONE_NAMESPACES]
    # personality(unsigned int): deny every value that is neither all zeros nor all ones
    # in its low 32 bits (those the kernel reads), i.e. some bit set next to a bit clear.
    rules += [
        ("personality", eperm, [_masked(0, (1 << bit) | (1 << (bit + 1) % 32), 1 << bit)])
        for bit in range(32)
    ]
    # socket(family, ...): deny 0, 3-9 and above 10, keeping 1, 2, 10 (any value above
    # 10, such as one with high bits set, is denied; the masked rules may overlap it).
    rules += [
        ("socket", eafnosupport, [condition])
        for condition in (
            _ArgCmp(0, SCMP_CMP_EQ, 0, 0),
            _masked(0, 0b0011, 0b0011),  # 3, 7
            _masked(0, 0b0100, 0b0100),  # 4-7
            _masked(0, 0b1110, 0b1000),  # 8, 9
            _ArgCmp(0, SCMP_CMP_GT, AF_INET6, 0),
        )
    ]
    return rules


def build_filter() -> bytes:
    """The filter as a BPF program for the native architecture, ready for ``install``."""
    library = _seccomp_library()
    context = library.seccomp_init(SCMP_ACT_ALLOW)
    if not context:
        raise OSError(errno.ENOMEM, "seccomp_init failed")
    try:
        for attribute, value in (
            (SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS),
            (SCMP_FLTATR_CTL_NNP, 0),  # the child sets it itself
            (SCMP_FLTATR_CTL_OPTIMIZE, 2),
        ):  # a binary tree of syscalls
            _check(
                library.seccomp_attr_set(context, attribute, value),
                f"seccomp_attr_set({attribute})",
            )
        for name, action, conditions in _rules():
            array = (_ArgCmp * max(len(conditions), 1))(*conditions)
            _check(
                library.seccomp_rule_add_array(
                    context, action, syscall_number(name), len(conditions), array
                ),
                f"seccomp_rule_add({name})",
            )
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            _check(library.seccomp_export_bpf(context, fd), "seccomp_export_bpf")
            os.lseek(fd, 0, os.SEEK_SET)
            program = b""
            while chunk := os.read(fd, 65536):
                program += chunk
        finally:
            os.close(fd)
    finally:
        library.seccomp_release(context)
    if not program or len(program) % 8:
        raise OSError(errno.EINVAL, f"seccomp_export_bpf wrote {len(program)} bytes")
    global _prepared
    _prepared = _prepare(program)
    return program


def _prepare(program: bytes) -> tuple[bytes, ctypes.Array, _SockFprog]:
    """The program in C memory and the struct sock_fprog pointing at it."""
    buffer = ctypes.create_string_buffer(program, len(program))
    return program, buffer, _SockFprog(len(program) // 8, ctypes.addressof(buffer))


def install(program: bytes) -> None:
    """Install ``program`` on this process for good (no_new_privs, or CAP_SYS_ADMIN, must be
    set)."""
    prepared = _prepared if _prepared is not None and _prepared[0] is program else _prepare(program)
    if _prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prepared[2]), 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"installing the seccomp filter: {os.strerror(code)}")


def available() -> tuple[bool, str]:
    """Whether libseccomp loads, builds the filter, and the kernel takes seccomp filters; why
    not."""
    try:
        release = version()
        build_filter()
    except OSError as exc:  # includes a missing libseccomp.so.2
        return False, f"libseccomp unusable: {exc}"
    if _prctl(PR_GET_SECCOMP, 0, None, 0, 0) < 0:
        return False, f"the kernel has no seccomp: {os.strerror(ctypes.get_errno())}"
    for action, name in ((SECCOMP_RET_ERRNO, "errno"), (SECCOMP_RET_KILL_PROCESS, "kill_process")):
        if not _action_available(action):
            return False, f"the kernel lacks the seccomp action {name}"
    return True, f"libseccomp {release}"


def _action_available(action: int) -> bool:
    """seccomp(SECCOMP_GET_ACTION_AVAIL); True when seccomp(2) itself is refused (an outer
    filter, e.g. a container's, may deny it while prctl still installs filters)."""
    number = syscall_number("seccomp")
    value = ctypes.c_uint32(action)
    if _libc.syscall(ctypes.c_long(number), SECCOMP_GET_ACTION_AVAIL, 0, ctypes.byref(value)) == 0:
        return True
    return ctypes.get_errno() in (errno.ENOSYS, errno.EPERM, errno.EACCES)


def probe(program: bytes) -> tuple[bool, str]:
    """Install ``program`` in a throwaway forked child and check that it denies ``unshare``
    (call from a single-threaded process, such as the zygote at start)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        report = b"the probe failed"
        try:
            os.close(read_end)
            _prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0)
            install(program)
            denied = _libc.unshare(0) == -1 and ctypes.get_errno() == errno.EPERM
            report = b"ok" if denied else b"the installed filter did not deny unshare"
        except OSError as exc:
            report = str(exc).encode()[:500]
        finally:
            os.write(write_end, report)
            os._exit(0)
    os.close(write_end)
    answer = b""
    while chunk := os.read(read_end, 4096):
        answer += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    return answer == b"ok", "filter installed and enforced" if answer == b"ok" else answer.decode(
        errors="replace"
    )


def _check(result: int, what: str) -> None:
    """Raise OSError for a libseccomp result (a negative errno)."""
    if result < 0:
        raise OSError(-result, f"{what}: {os.strerror(-result)}")
