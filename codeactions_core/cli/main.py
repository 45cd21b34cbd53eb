"""The ``codeactions`` entry point: serve | consumer | scheduler | worker | migrate | libs |
plugins | settings | secrets | client."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from codeactions_core import __version__
from codeactions_core.cli import (
    client,
    consumer,
    libs,
    migrate,
    plugins,
    scheduler,
    secrets,
    serve,
    settings,
    worker,
)
from codeactions_core.errors import CodeActionsError
from codeactions_core.log_config import configure_error_reporting, configure_logging
from codeactions_core.plugins import load_settings

SUBCOMMANDS = (
    serve,
    migrate,
    plugins,
    consumer,
    scheduler,
    worker,
    libs,
    secrets,
    settings,
    client,
)
"""The subcommand modules, in the order ``--help`` lists them."""


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        loaded = load_settings()
        configure_logging(loaded.log_level, loaded.log_throttle_seconds)
        configure_error_reporting(loaded)
        return args.handler(loaded, args)
    except CodeActionsError as exc:
        print(f"codeactions {args.command}: {exc.message}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codeactions", description="Store and run code actions.")
    parser.add_argument("--version", action="version", version=f"codeactions {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(commands)
    return parser
