"""``init``, ``push`` and ``pull``: a project folder's files and the server's codes in step."""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from codeactions_core.client.api import EXIT_OK, EXIT_USAGE, Api, ClientError
from codeactions_core.client.output import Output
from codeactions_core.client.project import (
    CONFIG_NAME,
    EXTENSIONS,
    CodeSettings,
    Project,
    render,
)


def init_command(api: Api, args: argparse.Namespace, out: Output) -> int:
    root: Path = args.dir
    root.mkdir(parents=True, exist_ok=True)
    path = root / CONFIG_NAME
    if path.exists():
        raise ClientError(f"{path} exists already", EXIT_USAGE)
    path.write_text(render(Project(root, args.project_uuid, args.url or "")))
    out.emit(
        {"config": str(path), "project_uuid": args.project_uuid},
        lambda c: c.print(f"created {path} for project {args.project_uuid}"),
    )
    return EXIT_OK


def desired(project: Project, name: str, language: str, source: str) -> dict[str, Any]:
    settings = project.settings_of(name)
    fields: dict[str, Any] = {
        "name": name,
        "language": language,
        "type": settings.type,
        "source": source,
        "project_uuid": project.project_uuid,
    }
    if settings.timeout is not None:
        fields["timeout"] = settings.timeout
    return fields


def line_delta(old: str, new: str) -> str:
    added = removed = 0
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return f"+{added} -{removed}"


def push_command(api: Api, args: argparse.Namespace, out: Output) -> int:
    project = Project.load(args.dir)
    remote = {}
    for code in sorted(api.codes(project.project_uuid), key=lambda c: c.get("updated_at") or ""):
        remote[code["name"]] = code
    rows = []
    for name, (language, path) in project.sources().items():
        fields = desired(project, name, language, path.read_text())
        current = remote.get(name)
        if current is None:
            action, detail = "created", f"{len(fields['source'].splitlines())} lines"
            if not args.dry_run:
                current = api.request("POST", "/code", body=fields)[1]
        else:
            changed = [
                key
                for key in ("source", "language", "type", "timeout")
                if key in fields and fields[key] != current.get(key)
            ]
            if not changed:
                action, detail = "unchanged", ""
            else:
                action = "updated"
                detail = ", ".join(
                    line_delta(current["source"], fields["source"])
                    if key == "source"
                    else f"{key} {current.get(key)} → {fields[key]}"
                    for key in changed
                )
                if not args.dry_run:
                    patch = {key: fields[key] for key in changed}
                    current = api.request("PATCH", f"/code/{current['id']}", body=patch)[1]
        rows.append(
            {
                "name": name,
                "action": action,
                "detail": detail,
                "id": current["id"] if current else None,
                "file": path.name,
            }
        )

    def human(console: Console) -> None:
        table = Table(
            title=f"push to {api.url} (project {project.project_uuid})"
            + (" — dry run" if args.dry_run else "")
        )
        for column in ("code", "file", "change"):
            table.add_column(column)
        table.add_column("id", overflow="fold")
        for row in rows:
            colour = {"created": "green", "updated": "yellow"}.get(row["action"], "dim")
            table.add_row(
                row["name"],
                row["file"],
                f"[{colour}]{row['action']}[/] {row['detail']}",
                row["id"] or "",
            )
        console.print(table)
        counts = {
            a: sum(1 for r in rows if r["action"] == a) for a in ("created", "updated", "unchanged")
        }
        console.print(", ".join(f"{n} {a}" for a, n in counts.items()))

    out.emit({"dry_run": args.dry_run, "codes": rows}, human)
    return EXIT_OK


def pull_command(api: Api, args: argparse.Namespace, out: Output) -> int:
    project = Project.load(args.dir)
    local = project.sources()
    rows = []
    latest: dict[str, dict[str, Any]] = {}
    for code in sorted(api.codes(project.project_uuid), key=lambda c: c.get("updated_at") or ""):
        latest[code["name"]] = code
    for name, code in sorted(latest.items()):
        suffix = EXTENSIONS.get(code["language"])
        if suffix is None or "/" in name or name.startswith("."):
            rows.append({"name": name, "action": "skipped", "file": None})
            continue
        path = project.root / f"{name}{suffix}"
        if name in local and local[name][1] != path:
            local[name][1].unlink()
        action = (
            "unchanged"
            if path.is_file() and path.read_text() == code["source"]
            else ("updated" if path.exists() else "written")
        )
        if action != "unchanged":
            path.write_text(code["source"])
        project.codes[name] = CodeSettings(code["type"], code.get("timeout"))
        rows.append({"name": name, "action": action, "file": path.name, "id": code["id"]})
    project.save()

    def human(console: Console) -> None:
        table = Table(title=f"pull from {api.url} (project {project.project_uuid})")
        for column in ("code", "file", "change"):
            table.add_column(column)
        for row in rows:
            table.add_row(row["name"], row["file"] or "", row["action"])
        console.print(table)

    out.emit({"codes": rows}, human)
    return EXIT_OK
