"""``codeactions settings [--markdown]``: the effective settings (secrets hidden), or the
documentation table of every setting."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Sequence

from codeactions_core.plugins import declared_settings, get_plugin_manager
from codeactions_core.settings import PluginSettings, Settings, describe_settings


def register(commands: argparse._SubParsersAction) -> None:
    show = commands.add_parser("settings", help="show the effective settings (secrets hidden)")
    show.add_argument("--markdown", action="store_true", help="print the documentation table")
    show.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
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
