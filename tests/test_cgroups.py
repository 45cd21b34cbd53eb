"""The sandbox's cgroup placer on this machine's real hierarchies (as root), and its v2 logic.

The v1 tests drive ``CgroupPlacer`` directly on /sys/fs/cgroup/<controller>. The v2
tests run it on the real cgroup2 hierarchy when one is writable here (on this hybrid
machine /sys/fs/cgroup/unified, where only hugetlb is a v2 controller), and check the
knob values against a fake cgroupfs of plain files.
"""

from __future__ import annotations

import json
import os
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from codeactions_core.execution import cgroups, linux
from codeactions_core.execution.cgroups import CgroupPlacer, Groups

MIB = 1 << 20
LIMITS = {"processes": 64, "cgroup_memory": 256 * MIB, "cpu_quota_us": 100_000, "cpu_shares": 1024}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="cgroups need root")


def v1_path(controller: str, *parts: str) -> Path | None:
    """Where this process's base group of ``controller`` is (None: no v1 hierarchy for it)."""
    own = cgroups.own_cgroups()
    for mount in cgroups.cgroup_mounts()[0]:
        if controller in mount.options and controller in own:
            relative = cgroups.relative_path(own[controller], mount.root)
            if relative is not None:
                return Path(mount.point, relative.lstrip("/"), f"codeactions-{os.getpid()}", *parts)
    return None


def knob(controller: str, slot: str, name: str) -> str:
    """A slot's knob, read back through the host's path."""
    path = v1_path(controller, slot, name)
    assert path is not None
    return path.read_text().strip()


def usage(slot: str) -> int:
    """Memory (with swap, when accounted) charged to a v1 slot."""
    memsw = v1_path("memory", slot, "memory.memsw.usage_in_bytes")
    if memsw is None or not memsw.exists():
        memsw = v1_path("memory", slot, "memory.usage_in_bytes")
    return int(memsw.read_text())


@pytest.fixture(params=[False, True], ids=["mounted", "fresh-mount"])
def placer(request) -> Iterator[CgroupPlacer]:
    """A v1 placer of this process, through the mounted hierarchies or new mounts of its own
    (the way when a container's cgroupfs is read-only); everything it made is gone afterwards."""
    placer = CgroupPlacer({"cgroup_version": 1, "cgroup_fresh_mount": request.param})
    if placer.version != 1 or placer.controllers != {"pids", "memory", "cpu"}:
        placer.remove_all()
        pytest.skip(f"no writable v1 pids/memory/cpu here ({placer.problem})")
    yield placer
    placer.remove_all()
    for controller in ("pids", "memory", "cpu"):
        base = v1_path(controller)
        assert base is not None and not base.exists(), f"{base} left behind"


def in_child(body: Callable[[], object], *, wait: bool = True) -> tuple[int, int]:
    """Fork; the child runs ``body`` and exits 0, or 1 on an exception (printed).
    Returns (pid, read end of a pipe the child may write to through ``body``)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(read_end)
            os.dup2(write_end, 200)
            body()
        except BaseException:  # noqa: BLE001 - printed; the exit code tells the test
            traceback.print_exc()
            code = 1
        os._exit(code)
    os.close(write_end)
    return pid, read_end


def tell(message: object) -> None:
    """From a child of ``in_child``: a JSON line to the test."""
    os.write(200, (json.dumps(message) + "\n").encode())


def hear(fd: int) -> object:
    """The next JSON line a child sent (EOF: the child ended without a word)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            raise AssertionError(f"the child ended without answering (got {data!r})")
        data += chunk
    return json.loads(data)


def exit_code(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_limits_are_written_to_a_new_slot_and_follow_changes(placer):
    """The knobs hold the run's limits; raising or lowering memory works.

    memsw >= memory at every step."""
    assert placer.protections() == {
        "version": 1,
        "controllers": ["cpu", "memory", "pids"],
        "cpu_cap": True,
        "cpu_weight": True,
        "swap_limit": v1_path("memory", "memory.memsw.limit_in_bytes").exists(),
        "reused_slot_reclaim": "memory.force_empty",
    }
    slot = placer.acquire()
    placer.configure(slot, LIMITS)
    assert knob("pids", slot, "pids.max") == "64"
    assert knob("memory", slot, "memory.limit_in_bytes") == str(256 * MIB)
    assert knob("cpu", slot, "cpu.cfs_quota_us") == "100000"
    assert knob("cpu", slot, "cpu.cfs_period_us") == "100000"
    assert knob("cpu", slot, "cpu.shares") == "1024"
    for memory in (1024 * MIB, 64 * MIB):
        placer.configure(slot, {**LIMITS, "cgroup_memory": memory})
        assert knob("memory", slot, "memory.limit_in_bytes") == str(memory)
        if v1_path("memory", slot, "memory.memsw.limit_in_bytes").exists():
            assert knob("memory", slot, "memory.memsw.limit_in_bytes") == str(memory)
    placer.configure(slot, {"cpu_quota_us": 50_000})  # no shares given: the equal default weight
    assert knob("cpu", slot, "cpu.cfs_quota_us") == "50000"
    assert knob("cpu", slot, "cpu.shares") == "1024"
    assert knob("pids", slot, "pids.max") == "max"


def test_a_child_joins_its_slot_through_descriptors_after_leaving_the_file_system(placer, tmp_path):
    """After a chroot into an empty directory (the pivot) the child still joins every controller;
    a process a finished run left in its slot is killed before the slot is used again."""
    empty = tmp_path / "empty"
    empty.mkdir()
    slot = placer.acquire()
    placer.configure(slot, LIMITS)
    release_read, release_write = os.pipe()

    def body() -> None:
        os.chroot(empty)
        os.chdir("/")
        tell({"sys_visible": os.path.exists("/sys/fs/cgroup")})
        placer.join_self(slot, {})
        tell({"joined": True})
        os.read(release_read, 1)  # never written: the straggler waits for its end

    pid, fd = in_child(body)
    try:
        assert hear(fd) == {"sys_visible": False}
        assert hear(fd) == {"joined": True}
        for controller in ("pids", "memory", "cpu"):
            assert knob(controller, slot, "cgroup.procs").split() == [str(pid)], controller
        placer.release(slot)  # its run is over, yet a process is left in it
        assert placer.acquire() != slot, "a slot with a process in it was handed out"
    finally:
        assert os.waitpid(pid, 0)[1] == signal.SIGKILL, "the straggler was not killed"
        os.close(release_write)
    assert placer.acquire() == slot, "the emptied slot was not reused"


def test_the_cpu_cap_holds_for_many_setsid_children(placer, tmp_path):
    """8 processes in their own sessions, burning CPU for 1 s of wall time, accrue at most
    about one core (cpuacct.usage of a group the run also joins) on a 2-core machine."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("a one-core machine cannot tell a one-core cap")
    measure = v1_path("cpuacct")
    if measure is None:
        pytest.skip("no v1 cpuacct hierarchy to measure with")
    measure = measure.with_name(f"cgroups-test-{os.getpid()}")
    measure.mkdir()
    slot = placer.acquire()
    placer.configure(slot, {**LIMITS, "cpu_quota_us": 100_000})

    def body() -> None:
        (measure / "cgroup.procs").write_text("0")
        placer.join_self(slot, {})
        started = time.monotonic()
        end = started + 1.0
        workers = []
        for _ in range(8):
            worker = os.fork()
            if worker == 0:
                os.setsid()
                while time.monotonic() < end:
                    pass
                os._exit(0)
            workers.append(worker)
        for worker in workers:
            os.waitpid(worker, 0)
        tell({"wall_ns": int((time.monotonic() - started) * 1e9)})

    try:
        pid, fd = in_child(body)
        wall_ns = hear(fd)["wall_ns"]
        assert exit_code(pid) == 0
        used_ns = int((measure / "cpuacct.usage").read_text())
    finally:
        measure.rmdir()
    assert used_ns < 1.5 * wall_ns, f"{used_ns / wall_ns:.2f} cores used under a one-core cap"
    assert used_ns > 0.2 * wall_ns, f"the workers hardly ran ({used_ns / wall_ns:.2f} cores)"


def test_a_reused_slot_starts_empty(placer, tmp_path):
    """A run that filled a tmpfs of its own mount namespace and the page cache leaves the
    slot it goes back to (near) empty."""
    mount_point = tmp_path / "shm"
    mount_point.mkdir()
    slot = placer.acquire()
    placer.configure(slot, {**LIMITS, "cgroup_memory": 512 * MIB})
    release_read, release_write = os.pipe()

    def body() -> None:
        placer.join_self(slot, {})
        linux.unshare(linux.CLONE_NEWNS)
        linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
        linux.mount("tmpfs", str(mount_point), "tmpfs", 0, "size=128m")
        (mount_point / "leftover").write_bytes(b"x" * (96 * MIB))
        with open(tmp_path / "cached", "wb") as handle:  # a disk file: dirty page cache
            handle.write(b"y" * (32 * MIB))
        tell({"filled": True})
        os.read(release_read, 1)

    pid, fd = in_child(body)
    try:
        assert hear(fd) == {"filled": True}
        assert usage(slot) > 100 * MIB
    finally:
        os.write(release_write, b"x")
        assert exit_code(pid) == 0
    placer.release(slot)
    assert placer.acquire() == slot
    assert usage(slot) < cgroups.LEFTOVER_BYTES + MIB


def test_a_slot_whose_charge_outlives_the_run_is_replaced(placer):
    """Pages of a tmpfs file that outlives the run (here a memfd the test keeps: the old
    shared /dev/shm case) cannot be reclaimed without swap: the next run gets a fresh slot."""
    slot = placer.acquire()
    placer.configure(slot, LIMITS)
    shared = os.memfd_create("leftover")
    try:
        pid, _ = in_child(lambda: (placer.join_self(slot, {}), os.write(shared, b"z" * (64 * MIB))))
        assert exit_code(pid) == 0
        assert usage(slot) > 60 * MIB
        placer.release(slot)
        fresh = placer.acquire()
        assert fresh != slot
        assert not v1_path("memory", slot).exists()
        assert usage(fresh) < MIB
        placer.configure(fresh, LIMITS)
        assert knob("memory", fresh, "memory.limit_in_bytes") == str(256 * MIB)
    finally:
        os.close(shared)


def test_remove_all_kills_stragglers_and_leaves_no_group(placer):
    """A process still in a slot at exit is killed; every slot and base group is removed."""
    slots = [placer.acquire() for _ in range(3)]
    for slot in slots:
        placer.configure(slot, LIMITS)
    release_read, _ = os.pipe()

    def body() -> None:
        os.setsid()
        placer.join_self(slots[1], {})
        tell({"joined": True})
        os.read(release_read, 1)  # never written: only SIGKILL ends it

    pid, fd = in_child(body)
    assert hear(fd) == {"joined": True}
    placer.remove_all()
    assert os.waitpid(pid, 0)[1] == signal.SIGKILL
    for controller in ("pids", "memory", "cpu"):
        assert not v1_path(controller).exists()


def test_release_only_queues(placer):
    """release() (the SIGCHLD handler's call) touches no file; acquire() does the checking."""
    slots = [placer.acquire() for _ in range(50)]
    started = time.perf_counter()
    for slot in slots:
        placer.release(slot)
    assert time.perf_counter() - started < 0.01
    assert sorted(placer.acquire() for _ in range(50)) == sorted(slots)


# -- cgroup v2 ------------------------------------------------------------------------------


def v2_hierarchy() -> tuple[Path, str, list[str]] | None:
    """This process's real cgroup2 directory, its path, and the controllers it offers.

    None when there is none here."""
    mount = cgroups.cgroup_mounts()[1]
    own = cgroups.own_cgroups().get("")
    if mount is None or own is None:
        return None
    relative = cgroups.relative_path(own, mount.root)
    if relative is None or mount.read_only:
        return None
    path = Path(mount.point, relative.lstrip("/"))
    if not os.access(path / "cgroup.procs", os.W_OK):
        return None
    return Path(mount.point), relative, (path / "cgroup.controllers").read_text().split()


def own_v2_cgroup() -> str:
    """This process's cgroup2 path (the "0::" line)."""
    return cgroups.own_cgroups()[""]


def in_zygote(body: Callable[[], dict]) -> dict:
    """Run ``body`` in a forked process (it moves itself between cgroups, as the zygote does)."""
    result: dict = {}

    def wrapped() -> None:
        tell(body())

    pid, fd = in_child(wrapped)
    try:
        result = hear(fd)
    finally:
        assert exit_code(pid) == 0
    return result


@pytest.fixture
def real_v2() -> Iterator[tuple[Path, str, list[str]]]:
    """The real cgroup2 hierarchy, with its root's subtree_control restored afterwards."""
    found = v2_hierarchy()
    if found is None or not found[2]:
        pytest.skip("no writable cgroup2 hierarchy with a controller here")
    mount, _, _ = found
    before = (mount / "cgroup.subtree_control").read_text().split()
    yield found
    for name in set((mount / "cgroup.subtree_control").read_text().split()) - set(before):
        try:
            (mount / "cgroup.subtree_control").write_text(f"-{name}")
        except OSError:
            pass


@pytest.mark.parametrize("fresh", [False, True], ids=["mounted", "fresh-mount"])
def test_v2_on_the_real_hierarchy(real_v2, tmp_path, fresh):
    """Zygote leaf, controllers delegated, join by descriptor after a chroot, populated
    slots held back, cgroup.kill and removal, on the real cgroup2 hierarchy (on this
    hybrid machine with whatever v2 controllers it has, e.g. only hugetlb)."""
    mount, relative, offered = real_v2
    empty = tmp_path / "empty"
    empty.mkdir()

    def zygote() -> dict:
        placer = CgroupPlacer(
            {
                "cgroup_version": 2,
                "cgroup_controllers": offered,
                "cgroup_fresh_mount": fresh,
                "cgroup_evacuate": False,
            }
        )  # never move the test runner's processes
        seen: dict = {
            "version": placer.version,
            "controllers": sorted(placer.controllers),
            "problem": placer.problem,
        }
        base = mount / relative.lstrip("/") / f"codeactions-{os.getpid()}"
        seen["in_leaf"] = (
            own_v2_cgroup() == f"{relative.rstrip('/')}/codeactions-{os.getpid()}/zygote"
        )
        seen["subtree"] = sorted((base / "cgroup.subtree_control").read_text().split())
        slot = placer.acquire()
        placer.configure(slot, LIMITS)
        seen["knobs"] = {
            name: (base / slot / name).read_text().strip()
            for name in ("pids.max", "memory.max", "cpu.max", "cpu.weight")
            if (base / slot / name).exists()
        }
        go_read, _go_write = os.pipe()  # never written: the members wait for SIGKILL
        ready_read, ready_write = os.pipe()
        member = os.fork()
        if member == 0:
            os.chroot(empty)
            placer.join_self(slot, {})
            os.write(ready_write, b"x")
            os.read(go_read, 1)
            os._exit(0)
        os.read(ready_read, 1)
        seen["member_in_slot"] = (base / slot / "cgroup.procs").read_text().split() == [str(member)]
        placer.release(slot)
        other = placer.acquire()
        seen["busy_slot_held_back"] = other != slot
        seen["straggler_killed_on_reuse"] = os.waitpid(member, 0)[1] == signal.SIGKILL
        placer.release(other)
        seen["reused"] = {placer.acquire(), placer.acquire()} == {slot, other}
        straggler = os.fork()
        if straggler == 0:
            placer.join_self(slot, {})
            os.write(ready_write, b"x")
            os.read(go_read, 1)  # never written: only SIGKILL ends it
            os._exit(0)
        os.read(ready_read, 1)
        placer.remove_all()
        seen["straggler_killed"] = os.waitpid(straggler, 0)[1] == signal.SIGKILL
        seen["base_removed"] = not base.exists()
        seen["zygote_back"] = own_v2_cgroup() == relative
        return seen

    seen = in_zygote(zygote)
    if seen["version"] is None and "could not enable" in seen["problem"]:
        pytest.skip(
            f"this process's cgroup holds processes and delegates nothing: {seen['problem']}"
        )
    assert seen.pop("version") == 2, seen["problem"]
    assert seen.pop("controllers") == sorted(offered)
    assert seen.pop("subtree") == sorted(offered)
    knobs = seen.pop("knobs")
    if "cpu" in offered:
        assert knobs["cpu.max"] == "100000 100000" and knobs["cpu.weight"] == "100"
    if "memory" in offered:
        assert knobs["memory.max"] == str(256 * MIB)
    if "pids" in offered:
        assert knobs["pids.max"] == "64"
    seen.pop("problem")
    assert seen == {
        "in_leaf": True,
        "member_in_slot": True,
        "busy_slot_held_back": True,
        "straggler_killed_on_reuse": True,
        "reused": True,
        "straggler_killed": True,
        "base_removed": True,
        "zygote_back": True,
    }


def test_v2_moves_the_processes_of_a_busy_own_group_into_a_leaf(real_v2):
    """No internal processes: when the own group holds processes (the server's), they move
    to ``codeactions-leaf`` so that controllers can be delegated below it."""
    mount, relative, offered = real_v2
    own = mount / relative.lstrip("/") / f"cgroups-test-{os.getpid()}"
    own.mkdir()
    try:
        delegate = " ".join(f"+{controller}" for controller in offered)
        try:
            (mount / relative.lstrip("/") / "cgroup.subtree_control").write_text(delegate)
        except OSError as exc:
            pytest.skip(f"cannot delegate {delegate} below this process's cgroup: {exc}")
        server_read, server_write = os.pipe()
        server = os.fork()
        if server == 0:
            os.read(server_read, 1)
            os._exit(0)
        (own / "cgroup.procs").write_text(str(server))

        def zygote() -> dict:
            (own / "cgroup.procs").write_text("0")
            placer = CgroupPlacer({"cgroup_version": 2, "cgroup_controllers": offered})
            leaf = (own / "codeactions-leaf" / "cgroup.procs").read_text().split()
            seen = {
                "version": placer.version,
                "problem": placer.problem,
                "server_moved": leaf == [str(server)],
                "own_empty": not (own / "cgroup.procs").read_text().strip(),
            }
            placer.remove_all()
            seen["zygote_in_leaf"] = own_v2_cgroup().endswith(f"/{own.name}/codeactions-leaf")
            seen["left"] = sorted(entry.name for entry in own.iterdir() if entry.is_dir())
            return seen

        seen = in_zygote(zygote)
        os.write(server_write, b"x")
        os.waitpid(server, 0)
    finally:
        for leftover in sorted(own.rglob("*"), reverse=True):
            if leftover.is_dir():
                leftover.rmdir()
        own.rmdir()
    assert seen == {
        "version": 2,
        "problem": "",
        "server_moved": True,
        "own_empty": True,
        "zygote_in_leaf": True,
        "left": ["codeactions-leaf"],
    }


V2_FILES = {
    "cgroup.controllers": "cpu memory pids io\n",
    "cgroup.subtree_control": "",
    "cgroup.procs": "",
    "cgroup.events": "populated 0\nfrozen 0\n",
    "cpu.max": "max 100000\n",
    "cpu.weight": "100\n",
    "memory.max": "max\n",
    "memory.swap.max": "max\n",
    "memory.current": "0\n",
    "memory.swap.current": "0\n",
    "memory.reclaim": "",
    "pids.max": "max\n",
}


class FakeKernelGroups(Groups):
    """Groups of a fake cgroupfs: creating a group creates its interface files (as the kernel)."""

    def make(self, dir_fd: int, name: str) -> None:
        super().make(dir_fd, name)
        for file_name, text in V2_FILES.items():
            fd = os.open(
                f"{name}/{file_name}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=dir_fd
            )
            os.write(fd, text.encode())
            os.close(fd)

    def remove(self, dir_fd: int, name: str) -> bool:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=dir_fd)
        except FileNotFoundError:
            return True
        try:
            for file_name in os.listdir(fd):
                os.unlink(f"{name}/{file_name}", dir_fd=dir_fd)
        finally:
            os.close(fd)
        return super().remove(dir_fd, name)


def test_v2_knobs_in_a_fake_cgroupfs(tmp_path):
    """The v2 code path writes the right values to the right files.

    The fake is plain files: it proves the file names, the values and their order of
    use (delegation in subtree_control, the zygote's move to its leaf, cpu.max, cpu.weight,
    memory.max, memory.swap.max, pids.max, memory.reclaim before a reuse, a slot replaced
    when its charge stays). It cannot prove that a kernel accepts them, enforces them,
    moves processes, or applies the no-internal-process rule: the real-hierarchy tests do.
    """
    for file_name, text in V2_FILES.items():
        (tmp_path / file_name).write_text(text)
    placer = CgroupPlacer(
        {"cgroup_v2_mount": str(tmp_path), "cgroup_path": "/"}, groups=FakeKernelGroups()
    )
    base = tmp_path / f"codeactions-{os.getpid()}"
    try:
        assert (placer.version, placer.problem) == (2, "")
        assert placer.protections() == {
            "version": 2,
            "controllers": ["cpu", "memory", "pids"],
            "cpu_cap": True,
            "cpu_weight": True,
            "swap_limit": True,
            "reused_slot_reclaim": "memory.reclaim",
        }
        assert (tmp_path / "cgroup.subtree_control").read_text() == "+pids +memory +cpu"
        assert (base / "cgroup.subtree_control").read_text() == "+pids +memory +cpu"
        assert (base / "zygote" / "cgroup.procs").read_text() == str(os.getpid())
        slot = placer.acquire()
        placer.configure(slot, {**LIMITS, "cpu_quota_us": 150_000, "cpu_shares": 2048})
        assert {
            name: (base / slot / name).read_text()
            for name in ("cpu.max", "cpu.weight", "memory.max", "memory.swap.max", "pids.max")
        } == {
            "cpu.max": "150000 100000",
            "cpu.weight": "200",
            "memory.max": str(256 * MIB),
            "memory.swap.max": "0",
            "pids.max": "64",
        }
        placer.configure(slot, {})
        assert (base / slot / "cpu.max").read_text() == "max 100000"
        assert (base / slot / "cpu.weight").read_text() == "100"
        assert (base / slot / "memory.max").read_text() == "max"
        (base / slot / "memory.current").write_text(str(MIB // 2))  # small leftovers are tolerated
        placer.release(slot)
        assert placer.acquire() == slot
        assert (base / slot / "memory.reclaim").read_text() == ""
        (base / slot / "memory.current").write_text(str(300 * MIB))  # a charge the "kernel" keeps
        placer.release(slot)
        fresh = placer.acquire()
        assert (base / slot).exists() is False and fresh != slot
        (base / fresh / "cgroup.events").write_text("populated 1\n")
        placer.release(fresh)
        assert placer.acquire() not in (fresh, slot)
    finally:
        placer.remove_all()
    assert [path.name for path in tmp_path.iterdir() if path.is_dir()] == []


def test_mountinfo_parsing(tmp_path):
    """v1 hierarchies with their controllers, the cgroup2 mount, read-only mounts (a container's)
    and escapes."""
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "31 23 0:28 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
        "32 31 0:29 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,relatime "
        "- cgroup cgroup rw,cpu,cpuacct\n"
        "33 31 0:30 / /sys/fs/cgroup/my\\040pids rw,relatime - cgroup cgroup rw,pids\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n"
    )
    v1, v2 = cgroups.cgroup_mounts(str(mountinfo))
    assert [(m.point, m.root, sorted(m.options), m.read_only) for m in v1] == [
        ("/sys/fs/cgroup/cpu,cpuacct", "/docker/abc", ["cpu", "cpuacct"], True),
        ("/sys/fs/cgroup/my pids", "/", ["pids"], False),
    ]
    assert v2 is not None and (v2.point, v2.root, v2.read_only) == (
        "/sys/fs/cgroup/unified",
        "/",
        False,
    )
    assert cgroups.relative_path("/docker/abc/inner", "/docker/abc") == "/inner"
    assert cgroups.relative_path("/docker/abc", "/docker/abc") == "/"
    assert cgroups.relative_path("/other", "/docker/abc") is None
    assert cgroups.relative_path("/a/b", "/") == "/a/b"


def test_knob_values_for_both_versions():
    """One run's limits as v1 and v2 knob values (0: unlimited; shares 1024 = weight 100)."""
    limits = {
        "processes": 64,
        "cgroup_memory": 256 * MIB,
        "cpu_quota_us": 150_000,
        "cpu_shares": 512,
    }
    assert cgroups.knob_values(1, limits) == [
        ("pids", "pids.max", "64"),
        ("memory", "memory.limit_in_bytes", str(256 * MIB)),
        ("memory", "memory.memsw.limit_in_bytes", str(256 * MIB)),
        ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_quota_us", "150000"),
        ("cpu", "cpu.shares", "512"),
    ]
    assert cgroups.knob_values(2, limits) == [
        ("pids", "pids.max", "64"),
        ("memory", "memory.max", str(256 * MIB)),
        ("memory", "memory.swap.max", "0"),
        ("cpu", "cpu.max", "150000 100000"),
        ("cpu", "cpu.weight", "50"),
    ]
    assert cgroups.knob_values(2, {}) == [
        ("pids", "pids.max", "max"),
        ("memory", "memory.max", "max"),
        ("memory", "memory.swap.max", "max"),
        ("cpu", "cpu.max", "max 100000"),
        ("cpu", "cpu.weight", "100"),
    ]
    tiny = {knob: value for _, knob, value in cgroups.knob_values(1, {"cpu_quota_us": 10})}
    assert tiny["cpu.cfs_quota_us"] == "1000"
