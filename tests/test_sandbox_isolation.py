"""Attacks on the sandbox's trust boundary, through a real ``codeactions serve``.

Each test is an attack the audit made succeed against the denylist sandbox
(issue 10): reading files and sockets outside DATA_DIR, running host binaries,
leaving files for another project's run, sharing a uid, reaching the host's
loopback services or a listener on the host, binding a port the host can reach,
and memory left in /dev/shm that OOM-killed a later run. After every test the
server answers /healthz promptly and runs normal code.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from codeactions_core.testing.server import (
    Answer,
    CodeClient,
    RunningServer,
    free_port,
    start_server,
)

pytestmark = pytest.mark.e2e

SECRET = f"secret-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Iterator[dict[str, str]]:
    """Things of the host outside DATA_DIR: a SQLite database, a Unix socket that answers."""
    folder = tmp_path_factory.mktemp("outside")
    database = folder / "other.db"
    with sqlite3.connect(database) as db:
        db.execute("create table secrets (value text)")
        db.execute("insert into secrets values (?)", (SECRET,))
    path = str(folder / "service.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o777)
    listener.listen(8)
    accepted: list[bool] = []

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(True)
            connection.sendall(SECRET.encode())
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    yield {"database": str(database), "socket": path, "folder": str(folder), "accepted": accepted}
    listener.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("data")
    server = start_server(
        {
            "FLOWS_CODE_ACTIONS_DATA_DIR": str(data),
            "FLOWS_CODE_ACTIONS_WORKER_POOL_SIZE": "2",
            "FLOWS_CODE_ACTIONS_SANDBOX_MEMORY_MB": "256",
            "FLOWS_CODE_ACTIONS_SANDBOX_SCRATCH_MB": "128",
            "FLOWS_CODE_ACTIONS_CODE_LIMITER_MAX_REQUESTS": "100000",
        },
        tmp_path_factory.mktemp("logs"),
    )
    yield server
    server.stop()


def create(
    server: RunningServer,
    source: str,
    language: str = "python",
    project: str = "P",
    timeout: int = 10,
) -> str:
    return CodeClient(server).create(source, language, project, timeout)


def call(server: RunningServer, code_id: str, **params: str) -> Answer:
    return CodeClient(server).call(code_id, **params)


def run(
    server: RunningServer, source: str, language: str = "python", project: str = "P", **params: str
) -> Answer:
    return CodeClient(server).run(source, language, project, **params)


def ready(server: RunningServer, language: str) -> None:
    CodeClient(server).require_runtime(language)


@pytest.fixture(autouse=True)
def server_survives(server):
    yield
    CodeClient(server).assert_still_serving()


PY_LOOK = """
import os, socket, sqlite3, subprocess
def attempt(action):
    try:
        return action()
    except Exception as exc:
        return type(exc).__name__
def Run(engine):
    p = engine.params.get
    def read_db():
        db = sqlite3.connect("file:" + p("database") + "?mode=ro", uri=True)
        return db.execute("select value from secrets").fetchone()[0]
    def unix(path):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(path)
            return s.recv(100).decode() or "connected"
    engine.result.set({
        "root": sorted(os.listdir("/")),
        "database": attempt(read_db),
        "socket": attempt(lambda: unix(p("socket"))),
        "postgres": attempt(lambda: unix("/var/run/postgresql/.s.PGSQL.5432")),
        "binary": attempt(lambda: subprocess.run(["id"], capture_output=True).returncode),
        "shell": attempt(
            lambda: subprocess.run("echo hi", shell=True, capture_output=True).returncode
        ),
        "var_tmp": attempt(lambda: open("/var/tmp/left", "w").write("x")),
        "run_lock": attempt(lambda: open("/run/lock/left", "w").write("x")),
        "sys": attempt(lambda: os.listdir("/sys/fs/cgroup")),
        "home": attempt(lambda: os.listdir("/home")),
        "etc": sorted(os.listdir("/etc")),
        "passwd": attempt(lambda: len(open("/etc/shadow").read())),
        "hostname": socket.gethostname(),
    }, content_type="json")
"""

ALLOWED_ROOT = {"dev", "etc", "lib", "lib64", "opt", "proc", "root", "tmp", "usr", "work", "bin"}
"""What may appear at the top of a Python run's root: system library folders, /etc, /dev,
/proc, /tmp, the libs directory under /opt, and the folders leading to the interpreter's
standard library (under /root with pyenv, /usr/local in the image)."""


def test_python_sees_an_allowlist_root_and_nothing_of_the_host(server, outside):
    answer = run(server, PY_LOOK, database=outside["database"], socket=outside["socket"])
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert set(seen["root"]) <= ALLOWED_ROOT, seen["root"]
    assert not {"var", "run", "sys", "home", "srv", "mnt", "boot"} & set(seen["root"])
    assert seen["database"] in ("OperationalError",), seen  # the file is not there to open
    assert seen["socket"] == "FileNotFoundError" and seen["postgres"] == "FileNotFoundError"
    assert outside["accepted"] == []
    assert seen["binary"] == "FileNotFoundError" and seen["shell"] == "FileNotFoundError"
    assert seen["var_tmp"] == "FileNotFoundError" and seen["run_lock"] == "FileNotFoundError"
    assert seen["sys"] == "FileNotFoundError" and seen["home"] == "FileNotFoundError"
    assert "shadow" not in seen["etc"] and seen["passwd"] == "FileNotFoundError"
    assert seen["hostname"] == "sandbox"


JS_LOOK = """
const fs = require("fs"), net = require("net"), cp = require("child_process");
const attempt = (action) => {
  try { return action(); } catch (error) { return error.code || String(error); }
};
const unix = (path) => new Promise((done) => {
  const socket = net.connect(path, () => done("connected"));
  socket.on("error", (error) => done(error.code));
  socket.setTimeout(2000, () => { socket.destroy(); done("timeout"); });
});
exports.Run = async (engine) => {
  engine.result.set({
    root: fs.readdirSync("/").sort(),
    database: attempt(() => fs.readFileSync(engine.params.get("database")).length),
    socket: await unix(engine.params.get("socket")),
    postgres: await unix("/var/run/postgresql/.s.PGSQL.5432"),
    binary: attempt(() => cp.execFileSync("id").toString()),
    var_tmp: attempt(() => fs.writeFileSync("/var/tmp/left", "x")),
  }, 200, "json");
};
"""


def test_javascript_sees_an_allowlist_root_and_nothing_of_the_host(server, outside):
    ready(server, "javascript")
    answer = run(
        server, JS_LOOK, "javascript", database=outside["database"], socket=outside["socket"]
    )
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert not {"var", "run", "sys", "home"} & set(seen["root"]), seen["root"]
    assert (
        seen["database"] == "ENOENT" and seen["socket"] == "ENOENT" and seen["postgres"] == "ENOENT"
    )
    assert seen["binary"] == "ENOENT" and seen["var_tmp"] == "ENOENT"
    assert outside["accepted"] == []


GO_LOOK = """package main

import (
	"net"
	"os"
	"os/exec"
	"time"
)

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	if os.IsNotExist(err) {
		return "not exist"
	}
	return err.Error()
}

func Run(engine *Engine) {
	entries, _ := os.ReadDir("/")
	names := []string{}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	_, dbErr := os.ReadFile(engine.Params.Get("database"))
	_, sockErr := net.DialTimeout("unix", engine.Params.Get("socket"), 2*time.Second)
	_, pgErr := net.DialTimeout("unix", "/var/run/postgresql/.s.PGSQL.5432", 2*time.Second)
	binErr := exec.Command("/usr/bin/id").Run()
	engine.Result.Set(map[string]any{
		"root": names, "database": errText(dbErr), "socket": errText(sockErr),
		"postgres": errText(pgErr), "binary": errText(binErr),
	}, 200, "json")
}
"""


def test_go_sees_an_allowlist_root_and_nothing_of_the_host(server, outside):
    ready(server, "go")
    answer = run(server, GO_LOOK, "go", database=outside["database"], socket=outside["socket"])
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert not {"var", "run", "sys", "home"} & set(seen["root"]), seen["root"]
    assert seen["database"] == "not exist", seen
    assert "no such file" in seen["socket"] and "no such file" in seen["postgres"], seen
    assert "no such file" in seen["binary"] or seen["binary"] == "not exist", seen
    assert outside["accepted"] == []


WRITE_SHARED = """
import os
def Run(engine):
    written = {}
    for folder in ("/dev/shm", "/tmp", "/var/tmp", "/run/lock"):
        try:
            with open(os.path.join(folder, "left-by-a"), "w") as handle:
                handle.write("from project A")
            written[folder] = True
        except OSError as exc:
            written[folder] = type(exc).__name__
    engine.result.set(written, content_type="json")
"""
READ_SHARED = """
import os
def Run(engine):
    engine.result.set({folder: os.path.exists(os.path.join(folder, "left-by-a"))
                       for folder in ("/dev/shm", "/tmp", "/var/tmp", "/run/lock")},
                      content_type="json")
"""


def test_files_left_in_shared_folders_never_reach_another_projects_run(server):
    written = run(server, WRITE_SHARED, project="A").json()
    assert written["/dev/shm"] is True and written["/tmp"] is True  # private, so allowed
    reader = create(server, READ_SHARED, project="B")
    for _ in range(4):  # whichever sandbox slot the next runs land in
        assert call(server, reader).json() == {
            "/dev/shm": False,
            "/tmp": False,
            "/var/tmp": False,
            "/run/lock": False,
        }
    assert not any(
        Path(folder, "left-by-a").exists() for folder in ("/dev/shm", "/var/tmp", "/run/lock")
    )


FILL_SHM = """
def Run(engine):
    written = 0
    try:
        for number in range(12):  # files of 10 MiB: each under the file-size limit
            with open(f"/dev/shm/ballast-{number}", "wb") as handle:
                for _ in range(10):
                    handle.write(b"x" * (1 << 20))
                    written += 1 << 20
    except OSError:
        pass
    engine.result.set(written >> 20)
"""
ALLOCATE = """
def Run(engine):
    ballast = bytearray(180 << 20)
    ballast[::4096] = b"y" * len(ballast[::4096])
    engine.result.set("allocated")
"""


def test_memory_left_in_dev_shm_is_not_charged_to_the_next_run(server):
    """The audit: 420 MiB left in /dev/shm stayed charged to a reused memory cgroup slot and a
    later, innocent run of another project in that slot was OOM-killed. Here each run's
    /dev/shm dies with it; the slots are reused (pool of 2), and the later runs fit."""
    filler, allocator = create(server, FILL_SHM, project="A"), create(server, ALLOCATE, project="B")
    for _ in range(3):
        assert int(call(server, filler).text) >= 100
        answer = call(server, allocator)
        assert (answer.status_code, answer.text) == (200, "allocated")


UID = """
import os, time
def Run(engine):
    time.sleep(float(engine.params.get("hold")))
    engine.result.set({"uid": os.getuid(), "gid": os.getgid()}, content_type="json")
"""


def test_concurrent_runs_have_their_own_uids(server):
    code_a, code_b = create(server, UID, project="A"), create(server, UID, project="B")
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(call, server, code_a, hold="1.5")
        second = pool.submit(call, server, code_b, hold="1.5")
        seen = [first.result().json(), second.result().json()]
    if os.geteuid() != 0:
        pytest.skip("one uid per sandbox needs root")
    assert seen[0]["uid"] != seen[1]["uid"] and all(entry["uid"] >= 1000 for entry in seen)
    assert all(entry["uid"] == entry["gid"] for entry in seen)


HOST_SERVICES = """
import json, socket
def Run(engine):
    seen = {}
    for name, (host, port) in json.loads(engine.params.get("targets")).items():
        try:
            with socket.create_connection((host, port), timeout=2):
                seen[name] = "connected"
        except OSError as exc:
            seen[name] = type(exc).__name__
    engine.result.set(seen, content_type="json")
"""


def host_addresses() -> list[str]:
    """This machine's own global IPv4 addresses (a packet to them never leaves it)."""
    listing = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True, check=True)
    return [
        entry["local"]
        for link in json.loads(listing.stdout)
        for entry in link.get("addr_info", [])
        if entry.get("scope") == "global"
    ]


def test_the_hosts_loopback_services_and_listeners_are_unreachable(server):
    protections = requests.get(server.url("/health"), timeout=30).json()["sandbox"]
    if protections.get("network") != "egress":
        pytest.skip(f"the egress network is not in force here: {protections.get('off')}")
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    targets = {
        "postgres": ["127.0.0.1", 5432],
        "redis": ["127.0.0.1", 6379],
        "rabbitmq": ["127.0.0.1", 5672],
        "api": ["127.0.0.1", server.port],
        "listener_loopback": ["127.0.0.1", port],
    }
    for number, address in enumerate(host_addresses()):
        targets[f"listener_host_{number}"] = [address, port]
    try:
        seen = run(server, HOST_SERVICES, targets=json.dumps(targets)).json()
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing of the run reached the host's listener
    finally:
        listener.close()
    assert set(seen) == set(targets) and "connected" not in seen.values(), seen


LISTEN = """
import socket
def Run(engine):
    server = socket.socket()
    server.bind(("0.0.0.0", int(engine.params.get("port"))))
    server.listen(4)
    server.settimeout(3)
    try:
        server.accept()
        engine.result.set("someone connected")
    except socket.timeout:
        engine.result.set("nobody connected")
"""


def test_a_port_bound_by_a_run_is_not_reachable_from_the_host(server):
    port = free_port()
    code = create(server, LISTEN)
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(call, server, code, port=str(port))
        deadline = time.monotonic() + 3
        refused = 0
        while time.monotonic() < deadline and not answer.done():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            except OSError:
                refused += 1
            time.sleep(0.1)  # paced connection attempts while the run listens, not synchronisation
        assert answer.result().text == "nobody connected"
    assert refused > 0
