"""The whole plugin contract of codeactions.

A plugin is a module (usually a distribution registering it under the entry
point group ``codeactions``) with functions named like the hooks below,
decorated with ``codeactions_core.hookimpl``. A plugin implements any subset.
Built-in plugins register their implementations with ``trylast=True``, so an
installed third-party plugin is asked first and wins a ``firstresult`` hook.

List hooks (runtimes, auth providers, step runners) return an iterable; the
core concatenates what every plugin returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from pluggy import HookspecMarker

if TYPE_CHECKING:
    import falcon

    from codeactions_core.auth import AuthProvider
    from codeactions_core.execution.runtime import Runtime
    from codeactions_core.flows.steps import StepRunner
    from codeactions_core.settings import PluginSettings, Settings
    from codeactions_core.store import LogStore, Store

hookspec = HookspecMarker("codeactions")


class RouteServices(Protocol):
    """What ``codeactions_add_routes`` is handed: the process's settings and store (the
    object is ``codeactions_core.wiring.Services``, with every use case as an attribute)."""

    settings: Settings
    store: Store


@hookspec
def codeactions_settings() -> Iterable[type[PluginSettings]]:
    """The plugin's own settings, as :class:`~codeactions_core.settings.PluginSettings` classes.

    Each class is a frozen dataclass whose fields are declared with
    ``codeactions_core.settings.setting(default, help, parse=..., secret=...)``, exactly
    like the core's: a field ``s3_bucket_name`` is read from
    ``FLOWS_CODE_ACTIONS_S3_BUCKET_NAME``. Every process reads and validates them at
    start with the core's (a bad value stops it with a message naming the variable;
    a variable declared twice, too), ``codeactions settings`` lists them (secrets
    hidden), and the plugin reads them typed in its other hooks with
    ``settings.plugin(ItsSettings)`` (the class's defaults when the settings were built
    in code without it). A class may check values that depend on each other
    (``validate``), derive defaults from others (``legacy_defaults``) and, for a store
    plugin, name the ``DB_TYPE`` values its store understands, with their aliases and
    the ``DB_URI`` schemes that select them (``store_types``, ``StoreType``s): any other
    DB_TYPE stops the process naming the installed choices. The hook takes no argument:
    it is called before the settings exist.
    """


@hookspec
def codeactions_runtimes(settings: Settings) -> Iterable[Runtime]:
    """Language runtimes this plugin provides.

    ``settings`` is the process's validated configuration. Each runtime serves
    the codes whose ``language`` equals its ``language`` attribute; a language
    named here becomes valid for new codes. When two plugins serve the same
    language, the one called first (a third-party plugin before a built-in)
    is used. Return an empty iterable when the plugin has nothing to offer.
    """


@hookspec(firstresult=True)
def codeactions_store(settings: Settings) -> Store | None:
    """The storage backend for ``settings.db_type``, or ``None`` if not this plugin's.

    ``settings`` carries ``db_type`` (one of the ``store_types`` a plugin's settings
    class declares, see ``codeactions_settings``) and the connection settings. The
    first plugin returning a store wins. The store must pass
    ``codeactions_core.testing.store_contract``.
    """


@hookspec(firstresult=True)
def codeactions_log_store(settings: Settings, store: Store) -> LogStore | None:
    """Where run logs are kept, or ``None`` to leave the choice to others.

    ``settings`` is the configuration (a plugin's own: ``settings.plugin(...)``); ``store`` is the
    chosen storage backend, whose ``logs`` the core uses when no plugin
    answers. The first plugin returning a log store wins.
    """


@hookspec
def codeactions_auth_providers(settings: Settings) -> Iterable[AuthProvider]:
    """Auth providers that turn request credentials into identities.

    ``settings`` is the configuration; return providers only when they are
    configured (e.g. a service token is set). Providers are asked in order;
    the first to return an identity decides. No provider at all means the
    deployment is open, which ``serve`` warns about loudly.
    """


@hookspec
def codeactions_step_runners(settings: Settings) -> Iterable[StepRunner]:
    """Flow step runners this plugin provides, one per step ``type``.

    ``settings`` is the configuration. A runner declares the JSON Schema of its
    step config; steps of its ``step_type`` are validated against it on save
    and run by it. A third-party runner replaces a built-in of the same type.
    """


@hookspec
def codeactions_add_routes(app: falcon.App, services: RouteServices) -> None:
    """Add HTTP routes to the API.

    ``app`` is the Falcon application being built (call ``app.add_route``);
    ``services`` gives access to settings, the store and the use cases. Errors
    raised from resources are rendered as ``{"message": ...}`` like the core's.
    A resource describes its routes in ``/openapi.json`` with an ``openapi``
    attribute: ``{"get": <OpenAPI operation object>, ...}`` (see
    ``codeactions_core/web/openapi/``); an undescribed route fails the spec test.
    """
