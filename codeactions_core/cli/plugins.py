"""``codeactions plugins [--json]``: the loaded plugins, their versions and hooks."""

from __future__ import annotations

import argparse
import dataclasses
import json

from codeactions_core.plugins import describe_plugins, get_plugin_manager
from codeactions_core.settings import Settings


def register(commands: argparse._SubParsersAction) -> None:
    plugins = commands.add_parser("plugins", help="list loaded plugins and their versions")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    infos = describe_plugins(get_plugin_manager(settings))
    if args.json:
        print(json.dumps([dataclasses.asdict(info) for info in infos], indent=2))
        return 0
    for info in infos:
        print(f"{info.name:<28} {info.version:<10} {info.distribution:<24} {', '.join(info.hooks)}")
    return 0
