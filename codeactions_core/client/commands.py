"""``codeactions client``: keep code in files, push it, run it, follow its logs, manage flows."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from codeactions_core.client.api import Api, ClientError
from codeactions_core.client.flows import flows_push_command, flows_run_command
from codeactions_core.client.output import Output
from codeactions_core.client.project import (
    CONFIG_NAME,
    Project,
    read_config_file,
)
from codeactions_core.client.running import logs_command, run_command
from codeactions_core.client.sync import init_command, pull_command, push_command
from codeactions_core.settings import ClientEnvironment

DEFAULT_URL = "http://127.0.0.1:8050"
EPILOG = """\
Server and token: --url/--token, else CODEACTIONS_URL/CODEACTIONS_TOKEN, else `url` in
codeactions.toml, else `url`/`token` in the config file (CODEACTIONS_CONFIG, by default
~/.config/codeactions/client.toml); the URL defaults to http://127.0.0.1:8050.

Exit codes: 0 done; 1 the code or flow ran and failed (or timed out); 2 bad arguments
or project folder; 3 the server refused the request (400, 404, 409, ...); 4 no or wrong
credentials (401, 403); 5 the server could not be reached or answered 5xx."""

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
