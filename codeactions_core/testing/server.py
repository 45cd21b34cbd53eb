"""Start the real ``codeactions`` processes for end-to-end tests."""

from __future__ import annotations

import atexit
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from codeactions_core.settings import SuiteEnvironment, inherited_environment

START_DEADLINE = 30.0
DATA_DIR_VARIABLE = "FLOWS_CODE_ACTIONS_DATA_DIR"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "codeactions_core.cli", *args]


def child_env(
    settings: Mapping[str, str], extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a child ``codeactions`` process: exactly these settings.

    A process given no data directory gets a private temporary one (removed when the test
    process exits) rather than the default ``./data`` of the checkout it was started from.
    """
    env = {**inherited_environment(), **settings, **(extra or {})}
    env.setdefault(DATA_DIR_VARIABLE, private_data_dir())
    return env


def private_data_dir() -> str:
    path = tempfile.mkdtemp(prefix="codeactions-test-data-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def run_cli(
    *args: str, settings: Mapping[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a ``codeactions`` command to completion with exactly these settings."""
    return subprocess.run(
        cli_command(*args),
        env=child_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        return stop_process(self.process, timeout)


def stop_process(process: subprocess.Popen, timeout: float = 30) -> int:
    """SIGTERM, wait up to ``timeout``, then SIGKILL; the exit status."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def start_server(
    settings: Mapping[str, str],
    log_dir: Path,
    *,
    workers: int = 1,
    extra_env: Mapping[str, str] | None = None,
    command: str = "serve",
) -> RunningServer:
    """Start ``codeactions serve`` on a free loopback port; return once /healthz answers."""
    port = free_port()
    env = child_env(
        {
            "FLOWS_CODE_ACTIONS_HOST": "127.0.0.1",
            "FLOWS_CODE_ACTIONS_PORT": str(port),
            "FLOWS_CODE_ACTIONS_WEB_WORKERS": str(workers),
            **settings,
        },
        extra_env,
    )
    log_path = Path(log_dir) / f"server-{port}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            cli_command(command), env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    server = RunningServer(process, port, log_path)
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(server.url("/healthz"), timeout=1) as response:
                if response.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.05)  # polling interval while the server boots, not synchronisation
    server.stop()
    raise RuntimeError(f"server did not answer /healthz within {START_DEADLINE}s:\n{server.log()}")


@dataclass
class RunningProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        return stop_process(self.process, timeout)

    def kill(self) -> None:
        """SIGKILL: a crash, nothing cleaned up."""
        self.process.kill()
        self.process.wait()


def start_until_logged(
    command: str,
    settings: Mapping[str, str],
    log_dir: Path,
    marker: str,
    *,
    name: str | None = None,
) -> RunningProcess:
    """Start ``codeactions <command>`` with these settings; return once its log shows ``marker``."""
    log_path = Path(log_dir) / f"{name or command}-{free_port()}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            cli_command(command), env=child_env(settings), stdout=log_file, stderr=subprocess.STDOUT
        )
    running = RunningProcess(process, log_path)
    deadline = time.monotonic() + START_DEADLINE
    while marker not in running.log():
        if process.poll() is not None:
            raise RuntimeError(f"{command} exited with {process.returncode}:\n{running.log()}")
        if time.monotonic() > deadline:
            running.stop()
            raise RuntimeError(
                f"{command} did not log {marker!r} within {START_DEADLINE}s:\n{running.log()}"
            )
        time.sleep(0.05)  # polling the log while the process starts, not synchronisation
    return running


@dataclass
class CodeClient:
    """Creates codes on a running server and calls them on the public endpoint route."""

    server: RunningServer
    token: str = ""
    """The service token, when the server has one."""
    timeout: float = 120

    def create(
        self,
        source: str,
        language: str = "python",
        project: str = "P",
        timeout: int = 10,
        name: str = "test",
    ) -> str:
        """POST /code (raw source); the new code's id."""
        request = urllib.request.Request(
            self.server.url(
                "/code?"
                + urllib.parse.urlencode(
                    {
                        "name": name,
                        "language": language,
                        "type": "endpoint",
                        "project_uuid": project,
                        "timeout": timeout,
                    }
                )
            ),
            data=source.encode(),
            method="POST",
            headers={"Authorization": f"Token {self.token}"} if self.token else {},
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as answer:
            assert answer.status == 201, answer.read()
            return json.loads(answer.read())["id"]

    def call(self, code_id: str, **params: str) -> Answer:
        """GET /action/endpoint/{id} with these query parameters (any status)."""
        url = self.server.url(f"/action/endpoint/{code_id}?" + urllib.parse.urlencode(params))
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as answer:
                return Answer(answer.status, answer.read().decode(errors="replace"))
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.read().decode(errors="replace"))

    def run(
        self, source: str, language: str = "python", project: str = "P", **params: str
    ) -> Answer:
        return self.call(self.create(source, language, project), **params)

    def require_runtime(self, language: str) -> None:
        """Skip when the language's runtime is not ready (fail: CODEACTIONS_REQUIRE_SERVICES=1)."""
        with urllib.request.urlopen(self.server.url("/health"), timeout=30) as answer:
            runtimes = json.loads(answer.read())["runtimes"]
        if runtimes.get(language, {}).get("ready"):
            return
        message = f"the {language} runtime is not available here: {runtimes.get(language)}"
        if SuiteEnvironment.from_env().require_services:
            pytest.fail(f"{message} and CODEACTIONS_REQUIRE_SERVICES=1")
        pytest.skip(message)

    def assert_still_serving(self) -> None:
        """The server is alive, answers /healthz within a second and still runs normal code."""
        assert self.server.process.poll() is None, "the server died"
        started = time.monotonic()
        with urllib.request.urlopen(self.server.url("/healthz"), timeout=2) as answer:
            assert json.loads(answer.read()) == {"status": "ok"}
        assert time.monotonic() - started < 1.0, "the server did not answer promptly"
        answer = self.run('def Run(engine):\n    engine.result.set("still fine")\n')
        assert (answer.status_code, answer.text) == (200, "still fine")


@dataclass
class Answer:
    status_code: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)
