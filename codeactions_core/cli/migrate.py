"""``codeactions migrate``: apply (or only show, or repair) the database schema."""

from __future__ import annotations

import argparse

from codeactions_core.cli.libs import sync_libraries
from codeactions_core.plugins import get_plugin_manager
from codeactions_core.settings import Settings
from codeactions_core.wiring import open_store


def register(commands: argparse._SubParsersAction) -> None:
    migrate = commands.add_parser("migrate", help="apply pending database migrations")
    migrate.add_argument("--to", type=int, metavar="VERSION", help="stop at this version")
    migrate.add_argument("--status", action="store_true", help="only show the schema version")
    migrate.add_argument(
        "--force",
        type=int,
        metavar="VERSION",
        help="record VERSION as applied and clean without running anything (repair a dirty schema)",
    )
    migrate.add_argument(
        "--libs",
        action="store_true",
        help="then `libs sync`: record every Python code's imports and install what is missing",
    )
    migrate.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    store = open_store(settings, get_plugin_manager(settings))  # the one process not checking
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
