"""How a setting is declared (``setting`` on a dataclass field), described (``SettingSpec``)
and read from an environment."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from codeactions_core.errors import ConfigurationError

PREFIX = "FLOWS_CODE_ACTIONS_"


def setting(
    default: Any,
    help: str,
    *,
    env: str | None = None,
    parse: Callable[[str], Any] = str.strip,
    secret: bool = False,
    aliases: tuple[str, ...] = (),
) -> Any:
    """Declare a setting. ``env`` defaults to ``FLOWS_CODE_ACTIONS_<FIELD NAME>``."""
    metadata = {"env": env, "help": help, "parse": parse, "aliases": aliases, "secret": secret}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for collection defaults")
    return field(default=default, repr=not secret, metadata=metadata)


@dataclass(frozen=True)
class SettingSpec:
    attr: str
    env: str
    default: Any
    help: str
    parse: Callable[[str], Any]
    aliases: tuple[str, ...]
    secret: bool


def describe_settings(section: type) -> list[SettingSpec]:
    """Every setting of ``section`` with its variable, default and meaning (for docs and
    parsing): the core's ``Settings``, or a plugin's PluginSettings class."""
    specs = []
    for f in dataclasses.fields(section):
        meta = f.metadata
        if "help" not in meta:  # plugin_settings
            continue
        specs.append(
            SettingSpec(
                attr=f.name,
                env=meta["env"] or PREFIX + f.name.upper(),
                default=f.default,
                help=meta["help"],
                parse=meta["parse"],
                aliases=meta["aliases"],
                secret=meta["secret"],
            )
        )
    return specs


def read_values(specs: Iterable[SettingSpec], environ: Mapping[str, str]) -> dict[str, Any]:
    """The parsed values of the settings set in ``environ``; ConfigurationError on a bad one."""
    values: dict[str, Any] = {}
    for spec in specs:
        raw = next(
            (environ[name] for name in (spec.env, *spec.aliases) if environ.get(name, "").strip()),
            None,
        )
        if raw is None:
            continue
        try:
            values[spec.attr] = spec.parse(raw)
        except ValueError as exc:
            raise ConfigurationError(f"{spec.env}: {exc}") from None
    return values


def check_variables_unique(core: type, plugins: Iterable[type]) -> None:
    """Refuse two declarations of one variable (a plugin's clashing with the ``core``
    settings' or another plugin's)."""
    owners = {
        name: "the core" for spec in describe_settings(core) for name in (spec.env, *spec.aliases)
    }
    for section in plugins:
        for spec in describe_settings(section):
            for name in (spec.env, *spec.aliases):
                if name in owners:
                    raise ConfigurationError(
                        f"{name}: declared by both {owners[name]} and {section.__qualname__} "
                        f"({section.__module__})"
                    )
                owners[name] = section.__qualname__
