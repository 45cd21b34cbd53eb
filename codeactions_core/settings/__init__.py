"""Typed settings from the environment: the only package that reads ``os.environ``.

Every setting is declared once (``core``) with its variable, default and meaning;
``Settings.from_env()`` parses (``parsing``) and validates them all and raises
:class:`ConfigurationError` naming the first bad variable. An empty variable
counts as unset, as it did in the old service.

These are the core's settings. A plugin declares its own the same way, as a
:class:`PluginSettings` dataclass returned by its ``codeactions_settings`` hook;
``Settings.from_env(plugins=...)`` reads and validates those too, and the plugin
reads them back typed with ``settings.plugin(ItsSettings)``.

This module names what plugins and tests use; the rest lives in its modules.
"""

from codeactions_core.settings.core import PluginSettings, Settings
from codeactions_core.settings.environment import (
    ClientEnvironment,
    SuiteEnvironment,
    ignored_variables,
    inherited_environment,
)
from codeactions_core.settings.legacy import UNUSED_SETTINGS
from codeactions_core.settings.parsing import (
    SANDBOX_PROTECTIONS,
    at_least,
    parse_auto_bool,
    parse_bool,
    parse_clock,
    parse_float,
    parse_int,
    parse_log_level,
    parse_terms,
    port,
    port_or_off,
)
from codeactions_core.settings.spec import PREFIX, SettingSpec, describe_settings, setting
from codeactions_core.settings.stores import StoreType

__all__ = [
    "PREFIX",
    "SANDBOX_PROTECTIONS",
    "UNUSED_SETTINGS",
    "ClientEnvironment",
    "PluginSettings",
    "SettingSpec",
    "Settings",
    "StoreType",
    "SuiteEnvironment",
    "at_least",
    "describe_settings",
    "ignored_variables",
    "inherited_environment",
    "parse_auto_bool",
    "parse_bool",
    "parse_clock",
    "parse_float",
    "parse_int",
    "parse_log_level",
    "parse_terms",
    "port",
    "port_or_off",
    "setting",
]
