"""The plugin manager: the core's own default plugins plus entry-point plugins."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pluggy

from codeactions_core import hookspecs
from codeactions_core.settings import PluginSettings, Settings

ENTRY_POINT_GROUP = "codeactions"

# Modules of the core registered as plugins (all ``trylast``).
DEFAULT_PLUGINS = ("codeactions_core.default_plugins",)


def get_plugin_manager(settings: Settings) -> pluggy.PluginManager:
    """A plugin manager with every plugin loaded except those the settings disable."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    for name in settings.disable_plugins:
        pm.set_blocked(name)
    for module_name in DEFAULT_PLUGINS:
        if not pm.is_blocked(module_name):
            pm.register(importlib.import_module(module_name), name=module_name)
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    pm.check_pending()
    return pm


def declared_settings(pm: pluggy.PluginManager) -> list[type[PluginSettings]]:
    """The PluginSettings classes the loaded plugins declare (``codeactions_settings``)."""
    declared = dict.fromkeys(collect(pm.hook.codeactions_settings()))
    return sorted(declared, key=lambda section: (section.__module__, section.__qualname__))


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of a process: the core's, then those the plugins they enable declare,
    all validated (ConfigurationError naming the first bad variable)."""
    core = Settings.from_env(environ)
    return Settings.from_env(environ, plugins=declared_settings(get_plugin_manager(core)))


def collect(results: Iterable[Iterable[Any] | None]) -> list[Any]:
    """Flatten what a list hook's implementations returned, in call order."""
    return [item for result in results if result for item in result]


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str
    distribution: str
    hooks: tuple[str, ...]


def describe_plugins(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Loaded plugins with their distribution versions and implemented hooks."""
    distributions = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        dist = distributions.get(id(plugin))
        hooks = tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or ()))
        infos.append(
            PluginInfo(
                name=name,
                version=dist.version if dist else _core_version(),
                distribution=dist.project_name if dist else "codeactions-core",
                hooks=hooks,
            )
        )
    return sorted(infos, key=lambda info: info.name)


def _core_version() -> str:
    from codeactions_core import __version__

    return __version__
