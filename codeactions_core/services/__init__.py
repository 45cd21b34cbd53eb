"""The use cases, wired to the plugins the settings select."""

from __future__ import annotations

from dataclasses import dataclass

import pluggy

from codeactions_core.errors import ConfigurationError
from codeactions_core.execution.pool import RunPool
from codeactions_core.metrics import Metrics
from codeactions_core.plugins import collect, get_plugin_manager
from codeactions_core.ratelimit import RateLimiter, build_rate_limiter
from codeactions_core.services.access import AccessService
from codeactions_core.services.codes import CodeService
from codeactions_core.services.health import HealthService
from codeactions_core.services.history import HistoryService
from codeactions_core.services.libs import LibraryService
from codeactions_core.services.projects import ProjectService
from codeactions_core.services.runs import Runtimes, RunService
from codeactions_core.settings import Settings
from codeactions_core.store import LogStore, Store

STORE_PLUGINS = {
    "sqlite": "codeactions-sql",
    "postgres": "codeactions-sql",
    "mongodb": "codeactions-mongo",
}


@dataclass
class Services:
    """Everything a process needs, built once from settings and plugins."""

    settings: Settings
    plugins: pluggy.PluginManager
    store: Store
    log_store: LogStore
    runtimes: Runtimes
    pool: RunPool
    codes: CodeService
    history: HistoryService
    runs: RunService
    projects: ProjectService
    access: AccessService
    libs: LibraryService
    metrics: Metrics
    rate_limiter: RateLimiter
    health: HealthService

    def start(self) -> None:
        """Start the runtimes now rather than on the first run (server workers do)."""
        self.runtimes.start()

    def close(self) -> None:
        self.pool.shutdown()
        self.runtimes.stop()
        if self.log_store is not self.store.logs and callable(getattr(self.log_store, "close", None)):
            self.log_store.close()
        self.store.close()


def open_store(settings: Settings, pm: pluggy.PluginManager) -> Store:
    """The store a plugin provides for ``settings.db_type``."""
    store = pm.hook.codeactions_store(settings=settings)
    if store is None:
        hint = STORE_PLUGINS.get(settings.db_type, "a plugin providing it")
        raise ConfigurationError(
            f"FLOWS_CODE_ACTIONS_DB_TYPE: no installed plugin provides a {settings.db_type!r} "
            f"store; install {hint} (see `codeactions plugins`)"
        )
    return store


def build_services(
    settings: Settings, pm: pluggy.PluginManager | None = None, store: Store | None = None
) -> Services:
    pm = pm or get_plugin_manager(settings)
    store = store or open_store(settings, pm)
    runtimes = Runtimes(collect(pm.hook.codeactions_runtimes(settings=settings)))
    log_store = pm.hook.codeactions_log_store(settings=settings, store=store)
    metrics = Metrics(settings.metrics_dir or None)
    pool = RunPool(settings.worker_pool_size, settings.worker_pool_queue_size, observer=metrics)
    libs = LibraryService(settings, store.libs)
    codes = CodeService(
        store.codes, runtimes=runtimes, blacklist=settings.blacklist, libraries=libs, observer=metrics
    )
    return Services(
        settings=settings,
        plugins=pm,
        store=store,
        log_store=log_store,
        runtimes=runtimes,
        pool=pool,
        codes=codes,
        history=HistoryService(codes, store.runs, log_store),
        runs=RunService(
            codes, store.runs, log_store, runtimes, pool, release=store.release, observer=metrics
        ),
        projects=ProjectService(store.projects, store.permissions),
        access=AccessService(
            collect(pm.hook.codeactions_auth_providers(settings=settings)),
            store.permissions,
            run_needs_service=bool(settings.auth_token),
        ),
        libs=libs,
        metrics=metrics,
        rate_limiter=build_rate_limiter(settings, on_failure=metrics.rate_limiter_errors.inc),
        health=HealthService(settings, store, log_store, runtimes),
    )
