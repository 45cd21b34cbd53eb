"""The ``codeactions`` command: serve | consumer | scheduler | worker | migrate | libs | plugins | settings
| client."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import logging
import sys
from collections.abc import Sequence

import pluggy

from codeactions_core import __version__
from codeactions_core.client.commands import register_command as register_client
from codeactions_core.errors import CodeActionsError
from codeactions_core.flows.worker import register_command as register_worker
from codeactions_core.libs.command import register_command as register_libs
from codeactions_core.libs.command import sync_libraries
from codeactions_core.log_config import configure_error_reporting, configure_logging
from codeactions_core.model import utcnow
from codeactions_core.plugins import (
    collect,
    declared_settings,
    describe_plugins,
    get_plugin_manager,
    load_settings,
)
from codeactions_core.scheduler import register_command as register_scheduler
from codeactions_core.secrets_command import register_command as register_secrets
from codeactions_core.services import open_store
from codeactions_core.services.instance import ServerInstance, claim_instance
from codeactions_core.services.run_leases import LEASE_EXPIRED, SERVER_RESTARTED
from codeactions_core.services.runs import fail_abandoned_runs
from codeactions_core.services.schema import ensure_schema_ready
from codeactions_core.settings import PluginSettings, Settings, describe_settings, ignored_variables
from codeactions_core.store import RunRepository

log = logging.getLogger("codeactions")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.log_level)
        configure_error_reporting(settings)
        return args.handler(settings, args)
    except CodeActionsError as exc:
        print(f"codeactions {args.command}: {exc.message}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codeactions", description="Store and run code actions.")
    parser.add_argument("--version", action="version", version=f"codeactions {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP API (gunicorn)")
    serve.add_argument("--host", help="override FLOWS_CODE_ACTIONS_HOST")
    serve.add_argument("--port", type=int, help="override FLOWS_CODE_ACTIONS_PORT")
    serve.add_argument("--workers", type=int, help="override FLOWS_CODE_ACTIONS_WEB_WORKERS")
    serve.set_defaults(handler=serve_command)

    migrate = commands.add_parser("migrate", help="apply pending database migrations")
    migrate.add_argument("--to", type=int, metavar="VERSION", help="stop at this version")
    migrate.add_argument("--status", action="store_true", help="only show the schema version")
    migrate.add_argument(
        "--force", type=int, metavar="VERSION",
        help="record VERSION as applied and clean without running anything (repair a dirty schema)",
    )
    migrate.add_argument(
        "--libs", action="store_true",
        help="then `libs sync`: record every Python code's imports and install what is missing",
    )
    migrate.set_defaults(handler=migrate_command)

    plugins = commands.add_parser("plugins", help="list loaded plugins and their versions")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.set_defaults(handler=plugins_command)

    consumer = commands.add_parser(
        "consumer", help="apply project and permission events from RabbitMQ until SIGTERM"
    )
    consumer.set_defaults(handler=consumer_command)
    register_scheduler(commands)
    register_worker(commands)
    register_libs(commands)
    register_secrets(commands)

    show = commands.add_parser("settings", help="show the effective settings (secrets hidden)")
    show.add_argument("--markdown", action="store_true", help="print the documentation table")
    show.set_defaults(handler=settings_command)
    register_client(commands)
    return parser


def serve_command(settings: Settings, args: argparse.Namespace) -> int:
    from codeactions_core.metrics import prepare_metrics_dir
    from codeactions_core.web.server import ApiServer

    overrides = {"host": args.host, "port": args.port, "web_workers": args.workers}
    settings = settings.replace(**{k: v for k, v in overrides.items() if v is not None})
    metrics_dir = prepare_metrics_dir(settings.metrics_directory)
    settings = settings.replace(metrics_dir=str(metrics_dir.resolve()))
    pm = get_plugin_manager(settings)
    store = open_store(settings, pm)
    try:
        status = ensure_schema_ready(store)
        instance = claim_instance(settings.data_dir)
        abandoned = fail_left_runs(store.runs, instance)
        if abandoned:
            log.warning("marked %d runs failed that a stopped server had left unfinished", abandoned)
    finally:
        store.close()
    warn_when_open(settings, pm)
    ignored = ignored_variables(plugins=[type(section) for section in settings.plugin_settings])
    if ignored:
        log.warning("ignored variables (this server does not use them): %s", ", ".join(ignored))
    log.info(
        "codeactions %s: %s store at schema version %s; plugins: %s",
        __version__, store.kind, status.current,
        ", ".join(f"{p.name} {p.version}" for p in describe_plugins(pm)),
    )
    try:
        ApiServer(settings, instance=instance).run()
    finally:
        instance.release()
    return 0


def fail_left_runs(runs: RunRepository, instance: ServerInstance) -> int:
    """At start: fail the runs the previous server on this data directory left unfinished
    (whatever their lease), those of any dead process, and old ownerless ones."""
    failed = fail_abandoned_runs(runs)
    if instance.restarted:
        failed += runs.fail_owned(instance.owner_prefix, SERVER_RESTARTED, prefix=True)
    return failed + runs.fail_expired_leases(utcnow(), LEASE_EXPIRED)


OPEN_WARNING = """
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!!  NO AUTHENTICATION IS CONFIGURED: anyone who can reach this server may    !!
!!  create, change, delete and run every code and read every run and log.    !!
!!  Set FLOWS_CODE_ACTIONS_AUTH_TOKEN (and/or FLOWS_CODE_ACTIONS_OIDC_*)      !!
!!  before exposing it: see "Securing a deployment" in the README.           !!
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"""


def warn_when_open(settings: Settings, pm: pluggy.PluginManager) -> bool:
    """Warn loudly when no auth provider is configured; True when open."""
    if collect(pm.hook.codeactions_auth_providers(settings=settings)):
        return False
    log.warning(OPEN_WARNING)
    return True


def migrate_command(settings: Settings, args: argparse.Namespace) -> int:
    store = open_store(settings, get_plugin_manager(settings))
    try:
        if args.force is not None:
            store.force_version(args.force)
            print(f"recorded version {args.force} as applied and clean")
        elif not args.status:
            applied = store.migrate(args.to)
            print(f"applied {', '.join(map(str, applied))}" if applied else "nothing to apply")
        status = store.schema_status()
        dirty = " (dirty)" if status.dirty else ""
        print(f"{store.kind} schema at version {status.current}{dirty}; latest is {status.latest}")
        if status.dirty:
            return 1
    finally:
        store.close()
    if getattr(args, "libs", False) and not args.status:
        return sync_libraries(settings)
    return 0


def consumer_command(settings: Settings, args: argparse.Namespace) -> int:
    from codeactions_core.consumer import require_broker_url, run_consumer
    from codeactions_core.services import build_services

    require_broker_url(settings)
    services = build_services(settings)
    try:
        status = ensure_schema_ready(services.store)
        log.info("codeactions %s consumer: %s store at schema version %s",
                 __version__, services.store.kind, status.current)
        run_consumer(settings, services)
    finally:
        services.close()
    return 0


def plugins_command(settings: Settings, args: argparse.Namespace) -> int:
    infos = describe_plugins(get_plugin_manager(settings))
    if args.json:
        print(json.dumps([dataclasses.asdict(info) for info in infos], indent=2))
        return 0
    for info in infos:
        print(f"{info.name:<28} {info.version:<10} {info.distribution:<24} {', '.join(info.hooks)}")
    return 0


def settings_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.markdown:
        print(settings_table(declared_settings(get_plugin_manager(settings))))
        return 0
    for section in (settings, *settings.plugin_settings):
        for spec in describe_settings(type(section)):
            value = getattr(section, spec.attr)
            if spec.secret and value:
                value = "<set>"
            elif value is None:
                value = "auto"
            elif isinstance(value, tuple):
                value = ",".join(value)
            print(f"{spec.env}={value}")
    return 0


def settings_table(plugins: Sequence[type[PluginSettings]] = ()) -> str:
    """Every setting as a Markdown table row (variable, default, meaning): the core's, then
    one table per plugin settings class, titled by its docstring's first line."""
    tables = [table_rows(Settings)]
    for section in plugins:
        if not describe_settings(section):  # a plugin declaring only DB_TYPE values
            continue
        title = (inspect.getdoc(section) or section.__qualname__).splitlines()[0]
        tables.append(f"{title}\n\n{table_rows(section)}")
    return "\n\n".join(tables)


def table_rows(section: type) -> str:
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for spec in describe_settings(section):
        default = ",".join(spec.default) if isinstance(spec.default, tuple) else spec.default
        default = "auto" if default is None else default
        default = f"`{default}`" if default not in ("", ()) else "(unset)"
        rows.append(f"| `{spec.env}` | {default} | {spec.help} |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
