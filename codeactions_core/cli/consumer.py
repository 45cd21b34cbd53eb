"""``codeactions consumer``: apply project and permission events from RabbitMQ until SIGTERM
(``codeactions_core.project_events``). It needs the store and the project service only."""

from __future__ import annotations

import argparse
import logging

from codeactions_core import __version__
from codeactions_core.broker import require_broker_url
from codeactions_core.project_events import run_consumer
from codeactions_core.services.projects import ProjectService
from codeactions_core.settings import Settings
from codeactions_core.wiring import ready_store

log = logging.getLogger("codeactions")


def register(commands: argparse._SubParsersAction) -> None:
    consumer = commands.add_parser(
        "consumer", help="apply project and permission events from RabbitMQ until SIGTERM"
    )
    consumer.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    require_broker_url(settings)
    store = ready_store(settings)
    try:
        log.info(
            "codeactions %s consumer: %s store at schema version %s",
            __version__,
            store.kind,
            store.schema_status().current,
        )
        run_consumer(settings, ProjectService(store.projects, store.permissions), store.release)
    finally:
        store.close()
    return 0
