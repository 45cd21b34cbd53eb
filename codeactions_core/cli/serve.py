"""``codeactions serve``: the HTTP API (gunicorn), after the store's schema is checked and
the runs a stopped server left unfinished are failed."""

from __future__ import annotations

import argparse
import logging

import pluggy

from codeactions_core import __version__
from codeactions_core.model import utcnow
from codeactions_core.plugins import collect, describe_plugins, get_plugin_manager
from codeactions_core.services.instance import ServerInstance, claim_instance
from codeactions_core.services.run_leases import LEASE_EXPIRED, SERVER_RESTARTED
from codeactions_core.services.runs import fail_abandoned_runs
from codeactions_core.settings import Settings, ignored_variables
from codeactions_core.store import RunRepository
from codeactions_core.wiring import ready_store

log = logging.getLogger("codeactions")


def register(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="run the HTTP API (gunicorn)")
    serve.add_argument("--host", help="override FLOWS_CODE_ACTIONS_HOST")
    serve.add_argument("--port", type=int, help="override FLOWS_CODE_ACTIONS_PORT")
    serve.add_argument("--workers", type=int, help="override FLOWS_CODE_ACTIONS_WEB_WORKERS")
    serve.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from codeactions_core.metrics import prepare_metrics_dir
    from codeactions_core.web.server import ApiServer

    overrides = {"host": args.host, "port": args.port, "web_workers": args.workers}
    settings = settings.replace(**{k: v for k, v in overrides.items() if v is not None})
    metrics_dir = prepare_metrics_dir(settings.metrics_directory)
    settings = settings.replace(metrics_dir=str(metrics_dir.resolve()))
    pm = get_plugin_manager(settings)
    store = ready_store(settings, pm)
    try:
        status = store.schema_status()
        instance = claim_instance(settings.data_dir)
        abandoned = fail_left_runs(store.runs, instance)
        if abandoned:
            log.warning(
                "marked %d runs failed that a stopped server had left unfinished", abandoned
            )
    finally:
        store.close()
    warn_when_open(settings, pm)
    ignored = ignored_variables(plugins=[type(section) for section in settings.plugin_settings])
    if ignored:
        log.warning("ignored variables (this server does not use them): %s", ", ".join(ignored))
    log.info(
        "codeactions %s: %s store at schema version %s; plugins: %s",
        __version__,
        store.kind,
        status.current,
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
