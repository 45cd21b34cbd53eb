"""``codeactions libs list | install [NAMES...] [--preset NAME] | sync``: the Python
libraries of the codes.

The use case is ``codeactions_core.libs.service``; this module is its command line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from codeactions_core.libs import LANGUAGE
from codeactions_core.libs.service import InstallReport, LibraryService
from codeactions_core.settings import Settings
from codeactions_core.wiring import ready_store


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``libs`` (actions ``list`` and ``install``) to the CLI's sub-parsers."""
    libs = commands.add_parser("libs", help="list or install the Python libraries codes import")
    actions = libs.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="recorded libraries and whether they are installed")
    listing.set_defaults(handler=run, run_action=list_command)
    install = actions.add_parser(
        "install", help="install libraries (default: every recorded one that is missing)"
    )
    install.add_argument("names", nargs="*", metavar="NAME", help="import names, e.g. yaml six")
    install.add_argument(
        "--preset",
        metavar="PRESET",
        help="install a pinned set instead: `legacy` (the old image's libraries) or a file path",
    )
    install.set_defaults(handler=run, run_action=install_command)
    sync = actions.add_parser(
        "sync", help="record every stored Python code's imports, then install what is missing"
    )
    sync.set_defaults(handler=run, run_action=sync_command)


def run(settings: Settings, args: argparse.Namespace) -> int:
    return args.run_action(settings, args)


@contextmanager
def library_service(settings: Settings) -> Iterator[LibraryService]:
    """A LibraryService on the configured store, closed afterwards."""
    store = ready_store(settings)
    try:
        yield LibraryService(settings, store.libs)
    finally:
        store.close()


def list_command(settings: Settings, args: argparse.Namespace) -> int:
    with library_service(settings) as libraries:
        names = libraries.recorded()
        for name in names:
            print(f"{name:<32} {library_state(libraries, name)}")
    if not names:
        print("no libraries recorded")
    return 0


def library_state(libraries: LibraryService, name: str) -> str:
    if libraries.skipped(name):
        return "skipped (SKIPLIST)"
    return "installed" if libraries.installed(name) else "missing"


def install_command(settings: Settings, args: argparse.Namespace) -> int:
    preset = getattr(args, "preset", None)
    if preset:  # no database needed: an image installs its preset at build
        installed = LibraryService(settings, None).install_preset(preset)
        print(f"installed preset {preset}: {len(installed)} distributions")
        return 0
    with library_service(settings) as libraries:
        report = libraries.install_each(args.names or libraries.recorded())
    print_report(report)
    return 1 if report.failed else 0


def sync_command(settings: Settings, args: argparse.Namespace) -> int:
    return sync_libraries(settings)


def sync_libraries(settings: Settings) -> int:
    """Backfill codelibs from every stored Python code, install the missing ones; exit status."""
    store = ready_store(settings)
    try:
        libraries = LibraryService(settings, store.libs)
        names = libraries.sync(store.codes.sources(LANGUAGE))
        print(
            f"recorded {len(names)} libraries imported by stored codes: {', '.join(names) or '-'}"
        )
        report = libraries.install_each(names)
    finally:
        store.close()
    print_report(report)
    return 1 if report.failed else 0


def print_report(report: InstallReport) -> None:
    """What happened to each library, one line per outcome."""
    lines = [
        ("installed", report.installed),
        ("already available", report.present),
        ("skipped (SKIPLIST)", report.skipped),
    ]
    for label, names in lines:
        if names:
            print(f"{label}: {', '.join(names)}")
    for message in report.failed.values():
        print(f"failed: {message}", file=sys.stderr)
    if not any(names for _, names in lines) and not report.failed:
        print("no libraries to install")
