"""Where the CPU of one run goes: server, sandboxes, PostgreSQL (issue 3's analysis).

    .venv/bin/python -m bench.cpu_per_run [--store sqlite|postgres] [--workers 2] [--seconds 8]

Drives a trivial Python action at concurrency 8 with wrk and reads, from
/proc, the CPU time the server's processes (master and gunicorn workers), the
sandbox trees (zygotes and every child they reaped) and all PostgreSQL
processes used meanwhile, per run.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from bench.execution import create_code, new_database
from bench.harness import descendants
from codeactions_core.testing.server import run_cli, start_server

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, *, with_children: bool) -> float:
    """utime + stime (and the CPU of reaped children, for a zygote)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    used = int(fields[11]) + int(fields[12])
    if with_children:
        used += int(fields[13]) + int(fields[14])
    return used / TICK


def command(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def snapshot(master: int) -> dict[str, float]:
    groups = {"server": 0.0, "sandboxes": 0.0, "postgres": 0.0}
    for pid in descendants(master):
        if "zygote.py" in command(pid):  # its children are counted once reaped
            groups["sandboxes"] += cpu_seconds(pid, with_children=True)
        elif "codeactions_core.cli" in command(pid):  # master and gunicorn workers
            groups["server"] += cpu_seconds(pid, with_children=False)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and command(int(entry.name)).startswith("postgres"):
            groups["postgres"] += cpu_seconds(int(entry.name), with_children=False)
    return groups


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ca-cpu-"))
    settings = {"FLOWS_CODE_ACTIONS_DATA_DIR": str(work)}
    if args.store == "postgres":
        settings |= {
            "FLOWS_CODE_ACTIONS_DB_TYPE": "postgres",
            "FLOWS_CODE_ACTIONS_DB_URI": new_database(),
        }
        run_cli("migrate", settings=settings).check_returncode()
    server = start_server(settings, work, workers=args.workers)
    try:
        url = server.url(f"/action/endpoint/{create_code(server.base_url, 'python')}")
        subprocess.run(["wrk", "-t2", "-c2", "-d2s", url], capture_output=True, check=True)
        before, started = snapshot(server.process.pid), time.monotonic()
        output = subprocess.run(
            ["wrk", "-t2", "-c8", f"-d{args.seconds}s", url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        elapsed = time.monotonic() - started
        time.sleep(0.5)  # let the zygotes reap the last children
        after = snapshot(server.process.pid)
    finally:
        server.stop()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])
    runs = rate * elapsed
    print(f"{args.store}, {args.workers} workers: {rate:.0f} runs/s at concurrency 8")
    for group in ("server", "sandboxes", "postgres"):
        print(f"  {group:10s} {1000 * (after[group] - before[group]) / runs:5.2f} ms CPU per run")


if __name__ == "__main__":
    main()
