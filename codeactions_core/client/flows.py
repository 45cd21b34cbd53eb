"""``flows push`` and ``flows run``: flow definitions kept as YAML or JSON files."""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from codeactions_core.client.api import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    Api,
    ClientError,
)
from codeactions_core.client.arguments import pairs
from codeactions_core.client.output import Output
from codeactions_core.client.project import Project

FLOW_DIGEST = "codeactions client push sha256:"


def load_flow_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ClientError(f"{path}: {exc.strerror}", EXIT_USAGE) from None
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ClientError(f"{path}: {exc}", EXIT_USAGE) from None
    else:
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise ClientError(f"{path}: {exc}", EXIT_USAGE) from None
    if (
        not isinstance(document, dict)
        or not document.get("name")
        or not isinstance(document.get("steps"), list)
    ):
        raise ClientError(f"{path}: a flow file holds an object with name and steps", EXIT_USAGE)
    return document


def resolve_steps(api: Api, project: Project, steps: list[Any]) -> list[Any]:
    """``code`` steps may name their code (``config: {code: NAME}``); the server wants its id."""
    resolved = []
    for step in steps:
        step = dict(step) if isinstance(step, dict) else step
        config = step.get("config") if isinstance(step, dict) else None
        if isinstance(config, dict) and step.get("type") == "code" and "code" in config:
            config = dict(config)
            config["code_id"] = api.code_named(project.project_uuid, str(config.pop("code")))["id"]
            step["config"] = config
        resolved.append(step)
    return resolved


def flows_push_command(api: Api, args: argparse.Namespace, out: Output) -> int:
    project = Project.load(args.dir)
    rows = []
    for path in args.files:
        document = load_flow_file(path)
        steps = resolve_steps(api, project, document["steps"])
        digest = hashlib.sha256(json.dumps(steps, sort_keys=True).encode()).hexdigest()
        flow = api.flow_named(project.project_uuid, document["name"])
        action = "unchanged"
        if flow is None:
            flow = api.request(
                "POST",
                "/flows",
                body={
                    "name": document["name"],
                    "project_uuid": project.project_uuid,
                    "description": str(document.get("description") or ""),
                },
            )[1]
            action = "created"
        versions = api.get(f"/flows/{flow['id']}/versions")
        latest = max(versions, key=lambda v: v["version_number"]) if versions else None
        if (
            latest is None
            or latest.get("change_notes") != FLOW_DIGEST + digest
            or latest["status"] == "draft"
        ):
            version = latest if latest and latest["status"] == "draft" else None
            body = {"steps": steps, "change_notes": FLOW_DIGEST + digest}
            if version is None:
                version = api.request("POST", f"/flows/{flow['id']}/versions", body=body)[1]
            else:
                version = api.request(
                    "PATCH", f"/flows/{flow['id']}/versions/{version['version_number']}", body=body
                )[1]
            api.request("POST", f"/flows/{flow['id']}/versions/{version['version_number']}/publish")
            action = action if action == "created" else "updated"
            latest = version
        rows.append(
            {
                "name": document["name"],
                "file": str(path),
                "action": action,
                "id": flow["id"],
                "version": latest["version_number"],
            }
        )

    def human(console: Console) -> None:
        table = Table(title=f"flows push to {api.url} (project {project.project_uuid})")
        for column in ("flow", "file", "change", "version"):
            table.add_column(column)
        table.add_column("id", overflow="fold")
        for row in rows:
            table.add_row(row["name"], row["file"], row["action"], str(row["version"]), row["id"])
        console.print(table)

    out.emit({"flows": rows}, human)
    return EXIT_OK


def flows_run_command(api: Api, args: argparse.Namespace, out: Output) -> int:
    project = Project.load(args.dir)
    flow = api.flow_named(project.project_uuid, args.name)
    if flow is None:
        raise ClientError(
            f"project {project.project_uuid} has no flow named {args.name!r}", EXIT_REFUSED
        )
    body: dict[str, Any] = {"variables": pairs(args.var, "--var")}
    if args.lead:
        body["lead_id"] = args.lead
    path = f"/flows/{flow['id']}/executions"
    _, execution = api.request("POST", path, params={"wait": "true"}, body=body)
    while execution["status"] not in ("completed", "failed", "cancelled"):
        time.sleep(0.5)  # polling a long execution (e.g. a wait step) until it ends
        execution = api.get(f"{path}/{execution['id']}")

    def human(console: Console) -> None:
        colour = "green" if execution["status"] == "completed" else "red"
        console.print(
            f"[bold]execution {execution['id']}[/bold] [{colour}]{execution['status']}[/]"
        )
        for record in execution.get("logs") or []:
            console.print(f"  {json.dumps(record)}", markup=False)
        if execution.get("error_message"):
            console.print(f"  error: {execution['error_message']}", markup=False)
        console.print(f"  result: {json.dumps(execution.get('result'))}", markup=False)

    out.emit(execution, human)
    return EXIT_OK if execution["status"] == "completed" else EXIT_FAILED
