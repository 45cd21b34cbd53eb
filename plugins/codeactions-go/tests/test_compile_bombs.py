"""Compile bombs against a real ``codeactions serve``: stopped by the build limits, harmlessly."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import pytest
import requests

from codeactions_core.settings import Settings
from codeactions_core.testing.server import RunningServer, start_server

pytestmark = pytest.mark.e2e

TOKEN = f"token-{uuid.uuid4().hex}"
MIB = 1024 * 1024
BUILD_MEMORY_MB = 1024
BINARY_MAX_MB = 64
NORMAL = """package main

func Run(engine *Engine) {
    engine.Result.Set("still fine", 200, "text")
}
"""
BIG_ARRAY = """package main

var big = [64 << 20]byte{1}

func main() { println(big[0]) }
"""


class PeakWatcher:
    """The highest peak resident size (VmHWM, kept by the kernel) of the build uid's processes."""

    def __init__(self, uid: int) -> None:
        self.uid = uid
        self.peak = 0
        self.processes = 0
        self._seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.is_set():
            for pid in filter(str.isdigit, os.listdir("/proc")):
                self._sample(int(pid))
            self._stop.wait(0.05)  # sampling interval

    def _sample(self, pid: int) -> None:
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            return
        fields = dict(line.split(":", 1) for line in lines if ":" in line)
        if int(fields.get("Uid", "-1").split()[0]) != self.uid or "VmHWM" not in fields:
            return
        self._seen.add(pid)
        self.processes = len(self._seen)
        self.peak = max(self.peak, int(fields["VmHWM"].split()[0]) * 1024)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("data")
    server = start_server(
        {
            "FLOWS_CODE_ACTIONS_DATA_DIR": str(data),
            "FLOWS_CODE_ACTIONS_AUTH_TOKEN": TOKEN,
            "FLOWS_CODE_ACTIONS_GO_BUILD_MEMORY_MB": str(BUILD_MEMORY_MB),
            "FLOWS_CODE_ACTIONS_GO_BINARY_MAX_MB": str(BINARY_MAX_MB),
        },
        tmp_path_factory.mktemp("logs"),
    )
    server.data_dir = data  # type: ignore[attr-defined]
    yield server
    server.stop()


def create(server: RunningServer, source: str) -> str:
    answer = requests.post(
        server.url("/code"),
        params={"name": "bomb", "language": "go", "type": "endpoint", "project_uuid": "P"},
        data=source.encode(),
        headers={"Authorization": f"Token {TOKEN}"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def call(server: RunningServer, code_id: str) -> requests.Response:
    return requests.get(server.url(f"/action/endpoint/{code_id}"), timeout=120)


def files_over(folder: Path, size: int) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file() and path.stat().st_size > size]


@pytest.fixture(autouse=True)
def server_survives(server: RunningServer) -> Iterator[None]:
    yield
    assert server.process.poll() is None, "the server died"
    started = time.monotonic()
    assert requests.get(server.url("/healthz"), timeout=2).json() == {"status": "ok"}
    assert time.monotonic() - started < 1.0, "the server did not answer promptly"
    answer = call(server, create(server, f"// {uuid.uuid4().hex}\n{NORMAL}"))
    assert (answer.status_code, answer.text) == (200, "still fine")


def test_the_constant_doubling_bomb_fails_on_the_build_memory_limit(server, bomb):
    """25 doublings: a 512 MiB constant, which drives Go 1.19's compiler to ~1.8 GiB."""
    build_uid = Settings().sandbox_uid_base - 1
    with PeakWatcher(build_uid) as watcher:
        code_id = create(server, bomb(25))  # compiles in the background ...
        answer = call(server, code_id)  # ... and the run waits for that build
    assert answer.status_code == 500, answer.text
    message = f"compiling the code needed more than {BUILD_MEMORY_MB} MiB of memory"
    assert message in answer.json()["message"]
    if os.geteuid() == 0:  # the build's own limit stopped it: no build process grew past it
        assert watcher.processes > 0
        assert 256 * MIB < watcher.peak <= BUILD_MEMORY_MB * MIB, watcher.peak / MIB
    errors = (server.data_dir / "go" / "bin").glob("*.error")
    cached = [path for path in errors if message in path.read_text()]
    assert len(cached) == 1  # a resource failure is cached: the bomb is not compiled on every run
    again = call(server, code_id)
    assert again.status_code == 500 and message in again.json()["message"]


@pytest.mark.parametrize("kind", ["array", "string"])
def test_a_binary_over_the_size_cap_fails_and_is_not_kept(server, bomb, kind):
    """A 64 MiB initialised array, or a 64 MiB string constant (22 doublings) kept in a variable."""
    source = BIG_ARRAY if kind == "array" else bomb(22, kept=True)
    answer = call(server, create(server, f"// {uuid.uuid4().hex}\n{source}"))
    assert answer.status_code == 500, answer.text
    assert f"the compiled program is larger than {BINARY_MAX_MB} MiB" in answer.json()["message"]
    assert files_over(server.data_dir / "go", BINARY_MAX_MB * MIB) == []  # cache, GOCACHE, builds
