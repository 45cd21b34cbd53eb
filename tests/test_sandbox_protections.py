"""The server says which sandbox protections are in force, and refuses to start without
those SANDBOX_REQUIRE names (real ``codeactions serve`` processes)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

from codeactions_core.execution import protections as sandbox_protections
from codeactions_core.settings import SANDBOX_PROTECTIONS
from codeactions_core.testing.server import child_env, cli_command, free_port, start_server

pytestmark = pytest.mark.e2e
ROOT = os.geteuid() == 0


def serve_until_exit(
    settings: dict[str, str], tmp_path: Path, deadline: float = 60
) -> tuple[int, str]:
    """Start `serve`, expecting it to refuse: its exit status and log."""
    env = child_env(
        {
            "FLOWS_CODE_ACTIONS_HOST": "127.0.0.1",
            "FLOWS_CODE_ACTIONS_PORT": str(free_port()),
            "FLOWS_CODE_ACTIONS_WEB_WORKERS": "1",
            "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path / "data"),
            **settings,
        }
    )
    try:
        done = subprocess.run(
            cli_command("serve"),
            env=env,
            capture_output=True,
            text=True,
            timeout=deadline,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"serve did not refuse to start: {exc.stdout}{exc.stderr}")
    return done.returncode, done.stdout + done.stderr


@pytest.mark.skipif(not ROOT, reason="every protection needs root here")
def test_a_server_requiring_every_protection_starts_here_and_reports_them(tmp_path):
    server = start_server(
        {
            "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path / "data"),
            "FLOWS_CODE_ACTIONS_SANDBOX_REQUIRE": "all",
        },
        tmp_path,
    )
    try:
        sandbox = requests.get(server.url("/health"), timeout=30).json()["sandbox"]
        assert sandbox_protections.in_force(sandbox) == dict.fromkeys(SANDBOX_PROTECTIONS, True), (
            sandbox
        )
        assert sandbox["network"] == "egress" and sandbox["filesystem"] == "allowlist root"
        assert sandbox["off"] == {}
        deadline = time.monotonic() + 10
        while "sandbox protections: on:" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the log of a starting server
        line = next(line for line in server.log().splitlines() if "sandbox protections" in line)
        assert "network=egress" in line and "OFF" not in line
    finally:
        server.stop()


@pytest.mark.skipif(not ROOT, reason="the uid range needs root")
def test_a_missing_required_protection_stops_the_server_naming_it(tmp_path):
    status, log = serve_until_exit(
        {
            "FLOWS_CODE_ACTIONS_SANDBOX_REQUIRE": "uid,egress",
            "FLOWS_CODE_ACTIONS_SANDBOX_UID_COUNT": "0",
        },
        tmp_path,
    )
    assert status != 0
    assert "SANDBOX_REQUIRE" in log and "- uid: off (SANDBOX_UID_COUNT is 0" in log
    assert "needs one uid per sandbox" in log
    assert "- egress" not in log  # egress is there: only what is missing is named


def test_an_unknown_protection_is_a_configuration_error(tmp_path):
    status, log = serve_until_exit(
        {"FLOWS_CODE_ACTIONS_SANDBOX_REQUIRE": "egress,teleportation"}, tmp_path
    )
    assert status != 0 and "SANDBOX_REQUIRE" in log and "teleportation" in log


def test_host_network_is_reported_as_such_and_warned_about(tmp_path):
    server = start_server(
        {
            "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path / "data"),
            "FLOWS_CODE_ACTIONS_SANDBOX_NETWORK": "host",
        },
        tmp_path,
    )
    try:
        sandbox = requests.get(server.url("/health"), timeout=30).json()["sandbox"]
        assert sandbox["network"] == "host" and not sandbox_protections.in_force(sandbox)["egress"]
        deadline = time.monotonic() + 10
        while "SANDBOX_NETWORK=host" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the log of a starting server
        assert "For development only" in server.log()
        status, log = serve_until_exit(
            {
                "FLOWS_CODE_ACTIONS_SANDBOX_NETWORK": "host",
                "FLOWS_CODE_ACTIONS_SANDBOX_REQUIRE": "network",
            },
            tmp_path,
        )
        assert status != 0 and "- network: off" in log
    finally:
        server.stop()
