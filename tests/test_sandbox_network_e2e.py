"""Egress mode through a real ``codeactions serve``: Python, JavaScript and Go codes try the
public host, metadata, private, CGNAT and documentation addresses, the name server's other
ports and the server itself.

The server runs inside ``cat-srv-<tag>`` (``tests.support.netns``) and the test
reaches it through sockets made inside that namespace; every packet stays in namespaces the
test creates.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from codeactions_core.testing.server import child_env, cli_command, stop_process
from tests.support.netns import (
    DENIED_TARGETS,
    DNS,
    DNS_NAME,
    METADATA6,
    PUBLIC,
    SERVER_ADDRESS,
    Topology,
    ip,
    made_topology,
    netns_request,
    nft_tables,
    wait_for,
)

pytestmark = pytest.mark.e2e

PORT = 8080
START_DEADLINE = 60.0

PYTHON = """import socket
import urllib.request


def Run(engine):
    out = {}
    for target in engine.params.get("targets").split(","):
        host, port = target.rsplit(":", 1)
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=2).close()
            out[target] = "connected"
        except ConnectionRefusedError:
            out[target] = "refused"
        except OSError as exc:
            out[target] = "error: " + str(exc)
    for key in ("url", "url2"):
        try:
            with urllib.request.urlopen(engine.params.get(key), timeout=5) as response:
                out[key] = response.status
        except Exception as exc:
            out[key] = "error: " + str(exc)
    engine.result.set(out, content_type="json")
"""

JAVASCRIPT = """const net = require('net');

function tryTcp(host, port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: 2000 });
    socket.on('connect', () => { socket.destroy(); resolve('connected'); });
    socket.on('timeout', () => { socket.destroy(); resolve('timeout'); });
    socket.on('error', (e) => resolve(e.code === 'ECONNREFUSED' ? 'refused' : 'error: ' + e.code));
  });
}

exports.Run = async function (engine) {
  const out = {};
  for (const target of engine.params.get('targets').split(',')) {
    const i = target.lastIndexOf(':');
    const host = target.slice(0, i).replace(/[\\[\\]]/g, '');
    out[target] = await tryTcp(host, Number(target.slice(i + 1)));
  }
  for (const key of ['url', 'url2']) {
    try {
      const response = await fetch(engine.params.get(key), { signal: AbortSignal.timeout(5000) });
      out[key] = response.status;
    } catch (e) {
      out[key] = 'error: ' + (e.cause ? e.cause.code || e.cause.message : e.message);
    }
  }
  engine.result.set(out, 200, 'json');
};
"""

GO = """package main

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

func Run(engine *Engine) {
	out := map[string]any{}
	for _, target := range strings.Split(engine.Params.Get("targets"), ",") {
		conn, err := net.DialTimeout("tcp", target, 2*time.Second)
		switch {
		case err == nil:
			conn.Close()
			out[target] = "connected"
		case errors.Is(err, syscall.ECONNREFUSED):
			out[target] = "refused"
		default:
			out[target] = "error: " + err.Error()
		}
	}
	client := http.Client{Timeout: 5 * time.Second}
	for _, key := range []string{"url", "url2"} {
		response, err := client.Get(engine.Params.Get(key))
		if err != nil {
			out[key] = "error: " + err.Error()
			continue
		}
		response.Body.Close()
		out[key] = response.StatusCode
	}
	engine.Result.Set(out, 200, "json")
}
"""

SOURCES = {"python": PYTHON, "javascript": JAVASCRIPT, "go": GO}
REFUSED = [f"{address}:80" for address in DENIED_TARGETS.values()] + [
    f"{DNS}:80",  # the name server, on a port that is not 53
    f"{SERVER_ADDRESS}:{PORT}",  # the server's own global address
    "10.254.0.1:8080",  # the server's end of the first uplink
    f"127.0.0.1:{PORT}",  # loopback: the run's own, the server is not there
]
TARGETS = [f"{PUBLIC}:80", *REFUSED, f"[{METADATA6}]:80"]


@dataclass
class Server:
    topology: Topology
    process: subprocess.Popen[bytes]
    log_path: Path

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, str]:
        return netns_request(self.topology.server, PORT, method, path, body)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def topology(tmp_path_factory) -> Iterator[Topology]:
    with made_topology(tmp_path_factory.mktemp("netns-e2e")) as created:
        yield created


@pytest.fixture(scope="module")
def server(topology: Topology, tmp_path_factory) -> Iterator[Server]:
    """``codeactions serve`` in egress mode inside the server namespace; stopped cleanly after,
    leaving no uplink, no table and forwarding off."""
    directory = tmp_path_factory.mktemp("server")
    settings = {
        "FLOWS_CODE_ACTIONS_HOST": "0.0.0.0",
        "FLOWS_CODE_ACTIONS_PORT": str(PORT),
        "FLOWS_CODE_ACTIONS_WEB_WORKERS": "1",
        "FLOWS_CODE_ACTIONS_DATA_DIR": str(directory / "data"),
        "FLOWS_CODE_ACTIONS_SANDBOX_NETWORK": "egress",
        "FLOWS_CODE_ACTIONS_SANDBOX_EGRESS_ALLOW": PUBLIC,
        "FLOWS_CODE_ACTIONS_SANDBOX_DNS": DNS,
    }
    log_path = directory / "server.log"
    ip_command = shutil.which("ip", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") or "ip"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [ip_command, "netns", "exec", topology.server, *cli_command("serve")],
            env=child_env(settings),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    running = Server(topology, process, log_path)
    try:
        deadline = time.monotonic() + START_DEADLINE
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}:\n{running.log()}")
            try:
                if running.request("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer /healthz:\n{running.log()}")
            time.sleep(0.05)  # polling interval while the server boots, not synchronisation
        yield running
    finally:
        stop_process(process, 30)
    links = json.loads(ip("-n", topology.server, "-j", "link", "show").stdout or "[]")
    assert wait_for(lambda: not nft_tables(topology.server), 5), nft_tables(topology.server)
    assert not [link["ifname"] for link in links if link["ifname"].startswith("ca")]
    forwarding = subprocess.run(
        topology.exec_command("cat", "/proc/sys/net/ipv4/ip_forward"),
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    assert forwarding == "0"


@pytest.fixture(scope="module")
def codes(server: Server) -> dict[str, str]:
    """The three codes, saved at once: Go's compile (a cold build cache) overlaps other tests."""
    ids = {}
    for language in ("go", "python", "javascript"):
        query = urllib.parse.urlencode(
            {
                "name": f"egress-{language}",
                "language": language,
                "type": "endpoint",
                "project_uuid": "P",
                "timeout": "30",
            }
        )
        status, text = server.request("POST", f"/code?{query}", SOURCES[language].encode())
        assert status == 201, text
        ids[language] = json.loads(text)["id"]
    return ids


def run_code(server: Server, code_id: str) -> dict:
    params = urllib.parse.urlencode(
        {
            "targets": ",".join(TARGETS),
            "url": f"http://{DNS_NAME}/",
            "url2": "http://169.254.169.254/latest/",
        }
    )
    status, text = server.request("GET", f"/action/endpoint/{code_id}?{params}")
    assert status == 200, text
    return json.loads(text)


@pytest.mark.parametrize("language", ["python", "javascript", "go"])
def test_egress_from_every_language(server: Server, codes: dict[str, str], language: str) -> None:
    seen_before = len(server.topology.connections())
    out = run_code(server, codes[language])
    assert out[f"{PUBLIC}:80"] == "connected", out
    assert out["url"] == 200, out
    for target in REFUSED:
        assert out[target] == "refused", (target, out)
    assert out[f"[{METADATA6}]:80"].startswith("error"), out
    assert str(out["url2"]).startswith("error"), out
    seen = server.topology.connections()[seen_before:]
    assert [(entry["host"], entry["port"]) for entry in seen] == [(PUBLIC, 80), (PUBLIC, 80)]
    # The server still answers, and says what is in force.
    status, text = server.request("GET", "/health")
    assert status == 200 and "egress" in text, text
