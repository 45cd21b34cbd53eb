"""``codeactions client``: keep code in files, push it, run it, follow its logs, manage flows."""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import sys
import time
from collections.abc import Callable
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
from codeactions_core.client.project import (
    CONFIG_NAME,
    EXTENSIONS,
    CodeSettings,
    Project,
    read_config_file,
    render,
)
from codeactions_core.settings import ClientEnvironment

DEFAULT_URL = "http://127.0.0.1:8050"
EPILOG = """\
Server and token: --url/--token, else CODEACTIONS_URL/CODEACTIONS_TOKEN, else `url` in
codeactions.toml, else `url`/`token` in the config file (CODEACTIONS_CONFIG, by default
~/.config/codeactions/client.toml); the URL defaults to http://127.0.0.1:8050.

Exit codes: 0 done; 1 the code or flow ran and failed (or timed out); 2 bad arguments
or project folder; 3 the server refused the request (400, 404, 409, ...); 4 no or wrong
credentials (401, 403); 5 the server could not be reached or answered 5xx."""
FLOW_DIGEST = "codeactions client push sha256:"

COMMON = argparse.ArgumentParser(add_help=False)
COMMON.add_argument("--url", default=argparse.SUPPRESS, help="the server (CODEACTIONS_URL)")
COMMON.add_argument("--token", default=argparse.SUPPRESS, help="the API token (CODEACTIONS_TOKEN)")
COMMON.add_argument(
    "-C", "--dir", type=Path, default=argparse.SUPPRESS, help="the project folder (default: .)"
)
COMMON.add_argument(
    "--json",
    action="store_true",
    default=argparse.SUPPRESS,
    help="machine-readable output on stdout",
)


def register_command(commands: argparse._SubParsersAction) -> None:
    """Add ``client`` and its subcommands to the ``codeactions`` parser."""
    client = commands.add_parser(
        "client",
        parents=[COMMON],
        help="talk to a server: push/pull code from files, run it, follow logs, flows",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = client.add_subparsers(dest="client_command", required=True, metavar="COMMAND")
    add_parser = sub.add_parser

    def with_common(*a: Any, **kw: Any) -> argparse.ArgumentParser:
        return add_parser(*a, parents=[COMMON], **kw)

    sub.add_parser = with_common  # the common options are accepted after any subcommand too

    init = sub.add_parser("init", help=f"make the folder a project ({CONFIG_NAME})")
    init.add_argument("project_uuid", help="the project the codes belong to")
    init.set_defaults(action=init_command)

    push = sub.add_parser(
        "push", help="create or update every code from its file (changed ones only)"
    )
    push.add_argument(
        "--dry-run", action="store_true", help="show what would change, change nothing"
    )
    push.set_defaults(action=push_command)

    pull = sub.add_parser("pull", help="write every code of the project to its file")
    pull.set_defaults(action=pull_command)

    run = sub.add_parser("run", help="run a code; print its result, status and logs")
    run.add_argument("name")
    run.add_argument(
        "-p", "--param", action="append", default=[], metavar="K=V", help="a query parameter"
    )
    run.add_argument("--body", help="the request body: text, or @file")
    run.set_defaults(action=run_command)

    logs = sub.add_parser("logs", help="a code's runs and their log lines")
    logs.add_argument("name")
    logs.add_argument("-n", "--last", type=int, default=10, help="how many past runs (default 10)")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing runs as they finish"
    )
    logs.add_argument(
        "--interval", type=float, default=1.0, help="seconds between polls when following"
    )
    logs.set_defaults(action=logs_command)

    flows = sub.add_parser("flows", help="flow definitions kept as YAML or JSON files")
    flow_sub = flows.add_subparsers(dest="flows_command", required=True, metavar="COMMAND")
    flow_add = flow_sub.add_parser
    flow_sub.add_parser = lambda *a, **kw: flow_add(*a, parents=[COMMON], **kw)
    flows_push = flow_sub.add_parser(
        "push", help="create each flow, and publish a version when its steps changed"
    )
    flows_push.add_argument("files", nargs="+", type=Path)
    flows_push.set_defaults(action=flows_push_command)
    flows_run = flow_sub.add_parser(
        "run", help="execute a flow's published version and wait for it"
    )
    flows_run.add_argument("name")
    flows_run.add_argument(
        "-v", "--var", action="append", default=[], metavar="K=V", help="a variable"
    )
    flows_run.add_argument("--lead", help="the lead id")
    flows_run.set_defaults(action=flows_run_command)

    client.set_defaults(handler=client_command)


class Output:
    """Rich tables and text for people; one JSON document for scripts (``--json``)."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.console = Console(highlight=False, soft_wrap=True)
        self.errors = Console(stderr=True, highlight=False, soft_wrap=True)

    def emit(self, document: Any, human: Callable[[Console], None]) -> None:
        if self.as_json:
            sys.stdout.write(json.dumps(document, indent=2) + "\n")
            sys.stdout.flush()
        else:
            human(self.console)

    def error(self, message: str) -> None:
        if self.as_json:
            sys.stdout.write(json.dumps({"error": message}) + "\n")
        self.errors.print(f"[red]error:[/red] {message}", markup=True)


def client_command(settings: object, args: argparse.Namespace) -> int:
    """Resolve the server and token, then run the subcommand; ClientError becomes its exit code."""
    for name, default in (("url", None), ("token", None), ("dir", Path(".")), ("json", False)):
        if not hasattr(args, name):
            setattr(args, name, default)
    out = Output(args.json)
    try:
        api = connect(args)
        return args.action(api, args, out)
    except ClientError as exc:
        out.error(exc.message)
        return exc.exit_code


def connect(args: argparse.Namespace) -> Api:
    environment = ClientEnvironment.from_env()
    config = read_config_file(Path(environment.config))
    project_url = ""
    if (args.dir / CONFIG_NAME).is_file() and args.client_command != "init":
        project_url = Project.load(args.dir).url
    url = args.url or environment.url or project_url or str(config.get("url") or "") or DEFAULT_URL
    token = args.token or environment.token or str(config.get("token") or "")
    return Api(url, token)


def pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ClientError(f"{what} {item!r} must look like NAME=VALUE", EXIT_USAGE)
        out[name] = value
    return out


# -- init, push, pull -------------------------------------------------------------------------


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


# -- run and logs -----------------------------------------------------------------------------


def read_body_argument(value: str | None) -> bytes | None:
    if value is None:
        return None
    if value.startswith("@"):
        try:
            return Path(value[1:]).read_bytes()
        except OSError as exc:
            raise ClientError(f"--body {value}: {exc.strerror}", EXIT_USAGE) from None
    return value.encode()


def project_of(args: argparse.Namespace) -> Project:
    return Project.load(args.dir)


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
    project = project_of(args)
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
    project = project_of(args)
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


# -- flows ------------------------------------------------------------------------------------


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
    project = project_of(args)
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
    project = project_of(args)
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
