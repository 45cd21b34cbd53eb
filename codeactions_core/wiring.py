"""The composition root: every process builds what it needs here, from settings and plugins.

``ready_store`` opens the store a plugin provides and checks its schema (every process);
``open_running_code`` builds what runs a code (every process that runs one). On top of it,
``build_services`` wires the API server's whole service graph, ``build_worker`` what
``codeactions worker`` drives and executes, ``open_firing`` what the scheduler fires
schedules with. ``load_step_runners`` and ``open_log_store`` ask the plugins.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pluggy

from codeactions_core.async_queue import PublishRuns
from codeactions_core.drain import IN_FLIGHT, TrackedRuns
from codeactions_core.errors import ConfigurationError
from codeactions_core.execution.pool import RunPool
from codeactions_core.execution.runtimes import Runtimes
from codeactions_core.flows.dispatch import Announce, Dispatcher, DriveHere, LeaveToWorkers
from codeactions_core.flows.driver import ExecutionDriver
from codeactions_core.flows.engine import FlowEngine
from codeactions_core.flows.registry import StepRunners
from codeactions_core.flows.runners import flow_egress
from codeactions_core.libs.service import LibraryService
from codeactions_core.locks import new_holder
from codeactions_core.metrics import Metrics
from codeactions_core.plugins import collect, get_plugin_manager
from codeactions_core.ratelimit import RateLimiter, build_rate_limiter
from codeactions_core.scheduling.model import TargetType
from codeactions_core.services.access import AccessService
from codeactions_core.services.async_runs import (
    AsyncRunService,
    RunHere,
    RunOnWorkers,
    Submitter,
)
from codeactions_core.services.callbacks import CallbackSender
from codeactions_core.services.codes import CodeService
from codeactions_core.services.flows import FlowService, code_runner
from codeactions_core.services.health import HealthService
from codeactions_core.services.history import HistoryService
from codeactions_core.services.outbox import Outbox
from codeactions_core.services.projects import ProjectService
from codeactions_core.services.run_caps import RunLimits
from codeactions_core.services.run_leases import RunLeases, run_owner
from codeactions_core.services.runs import RunService
from codeactions_core.services.schedule_firing import ScheduleFirer
from codeactions_core.services.schedule_targets import code_target, flow_target
from codeactions_core.services.schema import ensure_schema_ready
from codeactions_core.services.secrets import SecretService
from codeactions_core.settings import Settings
from codeactions_core.store import LockRepository, LogStore, Store


@dataclass
class RunningCode:
    """What every process that runs code holds: the store and log store, the runtimes and
    their pool, the metrics, and the code, secret and run services."""

    settings: Settings
    plugins: pluggy.PluginManager
    store: Store
    log_store: LogStore
    runtimes: Runtimes
    pool: RunPool
    metrics: Metrics
    codes: CodeService
    secrets: SecretService
    runs: RunService

    def close(self) -> None:
        """Stop renewing run leases, close the outbox, stop the runtimes and close the log
        store (the store is the caller's)."""
        if self.runs.leases is not None:
            self.runs.leases.stop()
        if self.runs.outbox is not None:
            self.runs.outbox.close()
        self.runtimes.stop()
        if self.log_store is not self.store.logs and callable(
            getattr(self.log_store, "close", None)
        ):
            self.log_store.close()


@dataclass
class Services(RunningCode):
    """Everything the API server needs, built once from settings and plugins."""

    history: HistoryService
    projects: ProjectService
    access: AccessService
    libs: LibraryService
    rate_limiter: RateLimiter
    health: HealthService
    flows: FlowService
    flow_driver: ExecutionDriver
    """Drives flow executions in this process once started (servers without a broker)."""
    flow_dispatcher: Dispatcher
    async_runs: AsyncRunService
    """Async runs and their callbacks (issue 15)."""

    def start(self) -> None:
        """Start the runtimes now rather than on the first run, renew this process's run
        leases, and drive flows when this server is to (server workers call it after their
        fork)."""
        self.runtimes.start()
        if self.runs.leases is not None:
            self.runs.leases.start()
        if self.settings.drives_flows_in_server:
            self.flow_driver.start()

    def close(self) -> None:
        """Let the flow steps under way finish, close the broker's publishers, then what
        runs code, then the store."""
        self.flow_driver.stop()
        if self.async_runs.submitter is not None:
            self.async_runs.submitter.close()
        if isinstance(self.flow_dispatcher, Announce):
            self.flow_dispatcher.close()
        super().close()
        self.store.close()


@dataclass
class WorkerServices(RunningCode):
    """What ``codeactions worker`` needs: flow executions driven here, async runs executed
    here (it starts no flow and accepts no async run: no dispatcher, no submitter)."""

    step_runners: StepRunners
    flow_driver: ExecutionDriver
    async_runs: AsyncRunService

    def close(self) -> None:
        """Let the flow steps under way finish, then close what runs code, then the store."""
        self.flow_driver.stop()
        super().close()
        self.store.close()


def open_store(settings: Settings, pm: pluggy.PluginManager) -> Store:
    """The store a plugin provides for ``settings.db_type``."""
    store = pm.hook.codeactions_store(settings=settings)
    if store is None:
        raise ConfigurationError(
            f"FLOWS_CODE_ACTIONS_DB_TYPE: no installed plugin provides a {settings.db_type!r} "
            "store; install a plugin providing it (see `codeactions plugins`)"
        )
    return store


def ready_store(settings: Settings, pm: pluggy.PluginManager | None = None) -> Store:
    """The store for ``settings``, its schema checked (closed again when the check fails):
    what every process opens first."""
    store = open_store(settings, pm or get_plugin_manager(settings))
    try:
        ensure_schema_ready(store)
    except BaseException:
        store.close()
        raise
    return store


def open_log_store(settings: Settings, pm: pluggy.PluginManager, store: Store) -> LogStore:
    """The log store a plugin provides, else the store's own database."""
    return pm.hook.codeactions_log_store(settings=settings, store=store) or store.logs


def load_step_runners(pm: pluggy.PluginManager, settings: Settings) -> StepRunners:
    """The runners every loaded plugin provides (third-party first, so they win)."""
    return StepRunners(collect(pm.hook.codeactions_step_runners(settings=settings)))


def open_running_code(
    settings: Settings,
    pm: pluggy.PluginManager,
    store: Store,
    *,
    instance: str = "",
    libs: LibraryService | None = None,
) -> RunningCode:
    """Runtimes, pool, metrics and the code, secret and run services over ``store``.
    ``instance``: the ``serve`` this process belongs to (see ``services.instance``);
    ``libs``: installs a code's libraries when it is saved (the API server's)."""
    runtimes = Runtimes(
        collect(pm.hook.codeactions_runtimes(settings=settings)), required=settings.sandbox_require
    )
    log_store = open_log_store(settings, pm, store)
    metrics = Metrics(settings.metrics_dir or None, code_labels=settings.metrics_code_labels)
    per_project, per_project_queue = settings.project_run_limits
    pool = RunPool(
        settings.worker_pool_size,
        settings.worker_pool_queue_size,
        observer=metrics,
        per_project=per_project,
        per_project_queue=per_project_queue,
    )
    codes = CodeService(
        store.codes,
        runtimes=runtimes,
        blacklist=settings.blacklist,
        libraries=libs,
        observer=metrics,
        versions=getattr(store, "versions", None),
        schedules=getattr(store, "schedules", None),
    )
    secrets = SecretService(store.secrets, settings.secrets_key)
    leases = RunLeases(
        store.runs,
        timedelta(seconds=settings.run_lease_seconds),
        owner=run_owner(instance),
        release=store.release,
    )
    runs = RunService(
        codes,
        TrackedRuns(store.runs, IN_FLIGHT),
        log_store,
        runtimes,
        pool,
        release=store.release,
        observer=metrics,
        endpoint_types=settings.endpoint_code_types,
        redact_headers=settings.redact_headers,
        limits=run_limits(settings),
        secrets=secrets,
        leases=leases,
        outbox=Outbox(
            Path(settings.data_dir) / "outbox", settings.run_outbox_mb * 1024 * 1024, leases.owner
        ),
    )
    leases.on_tick = runs.replay_outbox
    return RunningCode(
        settings=settings,
        plugins=pm,
        store=store,
        log_store=log_store,
        runtimes=runtimes,
        pool=pool,
        metrics=metrics,
        codes=codes,
        secrets=secrets,
        runs=runs,
    )


def build_services(
    settings: Settings,
    pm: pluggy.PluginManager | None = None,
    store: Store | None = None,
    *,
    instance: str = "",
) -> Services:
    """The API server's whole service graph. ``instance``: the ``serve`` this process
    belongs to (see ``services.instance``)."""
    pm = pm or get_plugin_manager(settings)
    store = store or open_store(settings, pm)
    libs = LibraryService(settings, store.libs)
    running = open_running_code(settings, pm, store, instance=instance, libs=libs)
    step_runners = load_step_runners(pm, settings)
    driver = flow_driver(running, step_runners)
    dispatcher = flow_dispatcher(settings, driver)
    async_runs = async_run_service(running)
    async_runs.submitter = async_submitter(settings, async_runs, running.pool)
    return Services(
        **vars(running),
        history=HistoryService(running.codes, store.runs, running.log_store),
        projects=ProjectService(store.projects, store.permissions),
        access=access_service(settings, pm, store),
        libs=libs,
        rate_limiter=build_rate_limiter(
            settings, on_failure=running.metrics.rate_limiter_errors.inc
        ),
        health=HealthService(settings, store, running.log_store, running.runtimes),
        flows=flow_service(settings, store, step_runners, dispatcher),
        flow_driver=driver,
        flow_dispatcher=dispatcher,
        async_runs=async_runs,
    )


def build_worker(
    settings: Settings, store: Store, pm: pluggy.PluginManager | None = None
) -> WorkerServices:
    """What ``codeactions worker`` runs: the flow driver and the async runs' executor."""
    pm = pm or get_plugin_manager(settings)
    running = open_running_code(settings, pm, store)
    step_runners = load_step_runners(pm, settings)
    return WorkerServices(
        **vars(running),
        step_runners=step_runners,
        flow_driver=flow_driver(running, step_runners),
        async_runs=async_run_service(running),
    )


def access_service(settings: Settings, pm: pluggy.PluginManager, store: Store) -> AccessService:
    """Who a request is, from the auth providers the plugins give (also guards a
    worker's ``/metrics``)."""
    return AccessService(
        collect(pm.hook.codeactions_auth_providers(settings=settings)),
        store.permissions,
        metrics_token=settings.metrics_token,
    )


def flow_driver(running: RunningCode, step_runners: StepRunners) -> ExecutionDriver:
    """Drives flow executions on threads of this process once started; ``code`` steps run
    through ``running``."""
    settings, store = running.settings, running.store
    return ExecutionDriver(
        FlowEngine(
            store.flows,
            step_runners,
            owner=new_holder(),
            lease=timedelta(seconds=settings.flow_lease_seconds),
            run_code=code_runner(running.codes, running.runs),
            observer=running.metrics,
        ),
        store.flows,
        threads=settings.flow_worker_threads,
        poll_seconds=settings.flow_poll_seconds,
        release=store.release,
    )


def flow_service(
    settings: Settings, store: Store, step_runners: StepRunners, dispatcher: Dispatcher
) -> FlowService:
    """Flow definitions and executions; a started execution goes to ``dispatcher``."""
    return FlowService(
        store.flows, step_runners, dispatcher, wait_seconds=settings.flow_wait_seconds
    )


def async_run_service(running: RunningCode) -> AsyncRunService:
    """Async runs executed here and called back; it accepts new ones once given a submitter
    (see ``async_submitter``)."""
    settings, store = running.settings, running.store
    egress = flow_egress(settings)
    callbacks = CallbackSender(
        egress,
        attempts=settings.callback_attempts,
        backoff_seconds=settings.callback_backoff_seconds,
        timeout_seconds=settings.callback_timeout_seconds,
    )
    return AsyncRunService(
        running.codes, running.runs, store.runs, store.async_runs, callbacks, egress, store.release
    )


def async_submitter(settings: Settings, service: AsyncRunService, pool: RunPool) -> Submitter:
    """Where accepted async runs go: the broker's workers when there is a broker, else
    ``pool``."""
    return RunOnWorkers(PublishRuns(settings)) if settings.rabbitmq_url else RunHere(service, pool)


def run_limits(settings: Settings) -> RunLimits:
    """The server's caps on what a run stores (RUN_MAX_*, SANDBOX_OUTPUT_KB)."""
    return RunLimits(
        log_lines=settings.run_max_log_lines,
        log_bytes=settings.run_max_log_kb * 1024,
        result_bytes=settings.run_max_result_kb * 1024,
        extra_bytes=settings.run_max_extra_kb * 1024,
        output_bytes=settings.sandbox_output_kb * 1024,
    )


def flow_dispatcher(settings: Settings, driver: ExecutionDriver | None) -> Dispatcher:
    """How a started execution reaches whoever drives it: the broker, this process's
    ``driver`` (a server that drives flows), or (neither) the workers' look into the store."""
    if settings.rabbitmq_url:
        return Announce(settings)
    if driver is not None and settings.drives_flows_in_server:
        return DriveHere(driver)
    return LeaveToWorkers()


FIRING_THREADS = 8


@dataclass
class Firing:
    """The scheduler process's schedule firer and what it fires with, closed together."""

    firer: ScheduleFirer
    running: RunningCode
    executor: ThreadPoolExecutor
    dispatcher: Dispatcher

    def close(self) -> None:
        """Wait for firings under way, then close what runs code (the store is the
        caller's)."""
        self.executor.shutdown(wait=True)
        if isinstance(self.dispatcher, Announce):
            self.dispatcher.close()
        self.running.close()


def open_firing(
    settings: Settings,
    store: Store,
    locks: LockRepository,
    pm: pluggy.PluginManager | None = None,
) -> Firing:
    """What the scheduler fires schedules with: code runs in this process, and flow
    executions started for the workers (or servers) that drive flows."""
    pm = pm or get_plugin_manager(settings)
    running = open_running_code(settings, pm, store)
    dispatcher = flow_dispatcher(settings, None)
    flows = flow_service(settings, store, load_step_runners(pm, settings), dispatcher)
    executor = ThreadPoolExecutor(max_workers=FIRING_THREADS, thread_name_prefix="schedule-fire")
    firer = ScheduleFirer(
        schedules=store.schedules,
        locks=locks,
        targets={
            TargetType.CODE: code_target(running.runs),
            TargetType.FLOW: flow_target(flows),
        },
        executor=executor,
        grace=timedelta(seconds=settings.schedule_misfire_grace_seconds),
        release=store.release,
    )
    return Firing(firer, running, executor, dispatcher)
