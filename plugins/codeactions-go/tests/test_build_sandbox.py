"""``go`` runs in the build sandbox: GOROOT, workspace and cache only, no network, the build uid."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from codeactions_go.build import Builder
from codeactions_go.cache import BinaryCache
from codeactions_go.toolchain import MIB, BuildLimits, Toolchain

from codeactions_core.settings import Settings

PROBE = """package main

import (
    "encoding/json"
    "net"
    "os"
    "time"
)

func main() {
    report := map[string]any{"uid": os.Getuid()}
    names := []string{}
    entries, _ := os.ReadDir("/")
    for _, entry := range entries {
        names = append(names, entry.Name())
    }
    report["root"] = names
    _, err := os.ReadFile(os.Args[1])
    report["database"] = err == nil
    _, err = os.Create(os.Args[2] + "/probe")
    report["goroot_writable"] = err == nil
    connection, err := net.DialTimeout("tcp", os.Args[3], 2*time.Second)
    report["connected"] = err == nil
    if err == nil {
        connection.Close()
    }
    json.NewEncoder(os.Stdout).Encode(report)
}
"""


def test_go_env_in_the_build_sandbox_names_its_own_folders(runtime):
    toolchain = runtime.builder.toolchain
    with toolchain.workspace() as space:
        toolchain.give(space.folder)
        argv = [f"{toolchain.goroot}/bin/go", "env", "-json"]
        report = toolchain.run_sandboxed(argv, cwd=space.inside_source, timeout=30)
    assert report.exit_code == 0, report
    values = json.loads(report.stdout)
    assert values["GOROOT"] == toolchain.goroot
    assert values["GOCACHE"] == "/build/cache"
    assert values["GOPATH"] == "/tmp/gopath" and values["GOPROXY"] == "off"
    assert str(toolchain.root) not in report.stdout  # the host's data directory is not named


def test_host_programs_are_absent_from_the_build_sandbox(runtime):
    toolchain = runtime.builder.toolchain
    with toolchain.workspace() as space:
        toolchain.give(space.folder)
        report = toolchain.run_sandboxed(["/bin/ls", "/"], cwd=space.inside_source, timeout=30)
    assert report.exit_code != 0 and not report.stdout
    assert "No such file" in f"{json.dumps(report.outcome)} {report.error} {report.stderr}"


def test_a_process_in_the_build_sandbox_sees_nothing_of_the_host(runtime, go_data_dir):
    """What the compiler (or a compiler bug) could reach: a program built and run there."""
    toolchain = runtime.builder.toolchain
    database = Path(go_data_dir) / "codeactions.db"
    database.write_text("every project's source")
    with socket.socket() as listener, toolchain.workspace() as space:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        runtime.builder._write(space.source, PROBE, program=True)
        toolchain.give(space.folder)
        built = toolchain.run(["build", "-o", space.inside_output, "."], cwd=space.inside_source)
        assert built.returncode == 0, built.output
        assert os.stat(space.output).st_uid == (toolchain.uid if os.geteuid() == 0 else os.getuid())
        host, port = listener.getsockname()
        address = f"{host}:{port}"
        argv = [space.inside_output, str(database), toolchain.goroot, address]
        report = toolchain.run_sandboxed(argv, cwd=space.inside_source, timeout=30)
    assert report.exit_code == 0, report
    seen = json.loads(report.stdout)
    if os.geteuid() == 0:
        assert seen["uid"] == toolchain.uid == Settings().sandbox_uid_base - 1
    assert not seen["database"] and not seen["goroot_writable"] and not seen["connected"]
    assert not {"root", "home", "var", "run", "sys", "bin", "sbin", "opt"} & set(seen["root"])
    assert {"build", "tmp", "proc", "dev", "usr"} <= set(seen["root"])


def test_a_build_past_its_wall_limit_fails_and_says_so(go_data_dir, tmp_path, bomb):
    """A slow compile (a smaller constant-doubling bomb) under a 1 s wall limit."""
    limits = BuildLimits(memory=1024 * MIB, binary=64 * MIB, timeout=1.0)
    toolchain = Toolchain(Settings(data_dir=str(tmp_path)), tmp_path / "go", limits)
    toolchain.start()
    try:
        builder = Builder(toolchain, BinaryCache(tmp_path / "go" / "bin", 4), {})
        build = builder.build(bomb(24))
        assert build.error == "compiling the code took longer than 1 s"
        assert list((tmp_path / "go" / "builds").iterdir()) == []
    finally:
        toolchain.stop()
