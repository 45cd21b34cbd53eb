"""``run`` and ``logs``: run a code of the project, and read what its runs left behind."""

from __future__ import annotations

import argparse
import time
from typing import Any

from rich.console import Console

from codeactions_core.client.api import EXIT_FAILED, EXIT_OK, Api
from codeactions_core.client.arguments import pairs, read_body_argument
from codeactions_core.client.output import Output
from codeactions_core.client.project import Project


def print_run(console: Console, run: dict[str, Any], lines: list[dict[str, Any]]) -> None:
    colour = {"completed": "green", "failed": "red"}.get(run["status"], "yellow")
    console.print(
        f"[bold]run {run['id']}[/bold] [{colour}]{run['status']}[/] {run.get('created_at', '')}"
    )
    for line in lines:
        console.print(
            f"  [dim]{line.get('created_at', '')}[/dim] {line['type']:<5} {line['content']}",
            markup=True,
        )
    console.print(f"  result: {run.get('result', '')}", markup=False)


def run_command(api: Api, args: argparse.Namespace, out: Output) -> int:
    project = Project.load(args.dir)
    code = api.code_named(project.project_uuid, args.name)
    _, answer = api.request(
        "POST",
        f"/run/{code['id']}",
        params=pairs(args.param, "-p"),
        data=read_body_argument(args.body) or b"",
    )
    run = answer["result"]
    lines = api.logs_of(run["id"])
    extra = run.get("extra") or {}
    document = {
        "code": args.name,
        "code_id": code["id"],
        "run_id": run["id"],
        "status": run["status"],
        "status_code": extra.get("status_code"),
        "result": run.get("result"),
        "logs": lines,
    }

    def human(console: Console) -> None:
        print_run(console, run, lines)
        if extra.get("status_code"):
            console.print(f"  status code: {extra['status_code']}")

    out.emit(document, human)
    return EXIT_OK if run["status"] == "completed" else EXIT_FAILED


TERMINAL = ("completed", "failed")


def logs_command(api: Api, args: argparse.Namespace, out: Output) -> int:
    project = Project.load(args.dir)
    code = api.code_named(project.project_uuid, args.name)
    shown: set[str] = set()

    def show_new(limit: int | None) -> None:
        runs = [
            run
            for run in api.get("/coderun", code_id=code["id"])
            if run["id"] not in shown and run["status"] in TERMINAL
        ]
        runs.sort(key=lambda run: run.get("created_at") or "")
        if limit is not None:
            skipped, runs = runs[:-limit] if limit else runs, runs[-limit:] if limit else []
            shown.update(run["id"] for run in skipped)
        for run in runs:
            shown.add(run["id"])
            lines = api.logs_of(run["id"])
            out.emit(
                {"run": run, "logs": lines},
                lambda console, r=run, ls=lines: print_run(console, r, ls),
            )

    show_new(args.last)
    if args.follow:
        out.errors.print(f"following the runs of {args.name} (Ctrl-C stops)")
    while args.follow:
        time.sleep(args.interval)  # the poll interval of --follow
        show_new(None)
    return EXIT_OK
