"""Benchmark of the hardened sandbox (issue 10) against the sandbox it replaced, in one run.

    .venv/bin/python -m bench.sandbox [--seconds 10] [--baseline 80e3724]

The baseline is the code of a commit before the hardening (default: the last one),
checked out into a temporary git worktree and served from there with the same
virtual environment, settings and machine: the trivial Python action through
``/action/endpoint`` at concurrency 1 (latency) and 8 (throughput) on SQLite and
PostgreSQL, then JavaScript and Go (c=1) on SQLite. Every server gets a rate limit
far above the load, and the measured answers must all be 200 (wrk counts the rest):
a figure made of 429s would measure the rate limiter, not the sandbox.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

import requests

from bench.execution import create_code, measure, new_database
from bench.harness import ROOT, save
from codeactions_core.testing.server import RunningServer, run_cli, start_server

UNLIMITED = {"FLOWS_CODE_ACTIONS_CODE_LIMITER_MAX_REQUESTS": "1000000000"}


def baseline_tree(ref: str, work: Path) -> Path:
    """The baseline's code in a worktree of its own (removed afterwards)."""
    tree = work / "baseline"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), ref],
        check=True,
        capture_output=True,
    )
    return tree


def python_path(tree: Path | None) -> dict[str, str]:
    """PYTHONPATH that makes a server import the baseline's core and plugins first."""
    if tree is None:
        return {}
    paths = [str(tree)] + [
        str(plugin) for plugin in sorted((tree / "plugins").iterdir()) if plugin.is_dir()
    ]
    return {"PYTHONPATH": os.pathsep.join(paths)}


def serve(settings: dict[str, str], work: Path, tree: Path | None) -> RunningServer:
    return start_server({**UNLIMITED, **settings}, work, workers=2, extra_env=python_path(tree))


def checked(name: str, figures: dict) -> dict:
    """The figures, refusing any that include non-200 answers or socket errors."""
    bad = {load: values["errors"] for load, values in figures.items() if values["errors"]}
    if bad:
        raise SystemExit(f"{name}: {bad} answers were not 200: the figures would not measure runs")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--baseline", default="80e3724", help="git ref of the sandbox before hardening"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating measurements of each server"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ca-bench-sandbox-"))
    tree = baseline_tree(args.baseline, work)
    os.chdir(work)  # `python -m` puts the working directory first on sys.path: not this checkout
    results: dict = {"seconds": args.seconds, "baseline": args.baseline}
    try:
        for store in ("sqlite", "postgres"):
            servers = {}
            try:
                for variant, source in (("before", tree), ("hardened", None)):
                    settings = {"FLOWS_CODE_ACTIONS_DATA_DIR": str(work / f"{store}-{variant}")}
                    if store == "postgres":
                        settings |= {
                            "FLOWS_CODE_ACTIONS_DB_TYPE": "postgres",
                            "FLOWS_CODE_ACTIONS_DB_URI": new_database(),
                        }
                        run_cli("migrate", settings=settings).check_returncode()
                    servers[variant] = serve(settings, work, source)
                # Both servers up, measured in turn: drift of a noisy machine hits both alike.
                urls = {
                    variant: server.url(
                        f"/action/endpoint/{create_code(server.base_url, 'python')}"
                    )
                    for variant, server in servers.items()
                }
                rounds: dict[str, list[dict]] = {variant: [] for variant in servers}
                for _ in range(args.rounds):
                    for variant, url in urls.items():
                        name = f"{store} {variant}"
                        rounds[variant].append(
                            checked(
                                name,
                                {k: v.as_dict() for k, v in measure(url, args.seconds).items()},
                            )
                        )
                for variant, server in servers.items():
                    name = f"{store} {variant}"
                    protections = requests.get(server.url("/health"), timeout=30).json()["sandbox"]
                    results[name] = {
                        "c1": median_of(rounds[variant], "c1"),
                        "c8": median_of(rounds[variant], "c8"),
                        "network": protections.get("network", protections.get("network_isolation")),
                    }
                    if store == "sqlite":
                        results[name]["languages"] = languages(server, args.seconds)
                    print(name, results[name], flush=True)
            finally:
                for server in servers.values():
                    server.stop()
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(work, ignore_errors=True)
    path = save("sandbox", results)
    print(report(results))
    print(f"\n(raw figures in {path})")


def median_of(rounds: list[dict], load: str) -> dict:
    """Each figure's median over the rounds."""
    return {key: statistics.median(entry[load][key] for entry in rounds) for key in rounds[0][load]}


def languages(server: RunningServer, seconds: float) -> dict:
    found: dict = {}
    health = requests.get(server.url("/health"), timeout=30).json()["runtimes"]
    for language in ("javascript", "go"):
        if health.get(language, {}).get("ready"):
            url = server.url(f"/action/endpoint/{create_code(server.base_url, language)}")
            first = requests.get(url, timeout=120)  # Go compiles on its first run
            assert first.status_code == 200, first.text
            found[language] = checked(language, {"c1": measure(url, seconds)["c1"].as_dict()})["c1"]
    return found


def report(results: dict) -> str:
    lines = [
        "| server | p50 c=1 (ms) | p99 c=1 (ms) | runs/s c=8 | p50 c=8 (ms) | kept (c=8) |",
        "|---|---|---|---|---|---|",
    ]
    for store in ("sqlite", "postgres"):
        before = results[f"{store} before"]
        for variant in ("before", "hardened"):
            figures = results[f"{store} {variant}"]
            c1, c8 = figures["c1"], figures["c8"]
            kept = c8["requests_per_second"] / before["c8"]["requests_per_second"]
            lines.append(
                f"| {store} {variant} | {c1['p50_ms']:.2f} | {c1['p99_ms']:.2f} | "
                f"{c8['requests_per_second']:.0f} | {c8['p50_ms']:.2f} | {kept:.0%} |"
            )
    for variant in ("before", "hardened"):
        for language, figures in results[f"sqlite {variant}"].get("languages", {}).items():
            lines.append(
                f"{language} ({variant}): p50 c=1 {figures['p50_ms']:.2f} ms, "
                f"{figures['requests_per_second']:.0f} runs/s"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
