"""``codeactions worker``: drives flow executions and runs async runs until SIGTERM.

With ``RABBITMQ_URL`` it also takes async runs (``POST /run/{id}?async=true``) from
their queue, ASYNC_WORKER_THREADS at a time (:class:`AsyncRunWorker`: on SIGTERM it stops
taking runs, lets the ones in hand finish, stored, called back and acknowledged).

It takes the executions the broker announces (when ``RABBITMQ_URL`` is set)
and, every ``FLOW_POLL_SECONDS``, those the store says are due: waits that
ended and executions whose worker died. Run as many as you like: a lease on
each execution keeps two workers from running its steps at once. SIGTERM lets
the running steps finish. With ``WORKER_METRICS_PORT`` it serves its own
Prometheus ``/metrics`` (flow steps and executions, code runs of code steps).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from codeactions_core import __version__
from codeactions_core.async_queue import RunConsumer
from codeactions_core.broker import stop_on_signals
from codeactions_core.flows.dispatch import DueConsumer
from codeactions_core.metrics import serve_metrics
from codeactions_core.plugins import get_plugin_manager
from codeactions_core.services.async_runs import AsyncRunService, this_process
from codeactions_core.settings import Settings
from codeactions_core.wiring import access_service, build_worker, ready_store

log = logging.getLogger("codeactions.worker")


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``worker`` to the CLI's sub-parsers."""
    parser = commands.add_parser(
        "worker", help="drive flow executions and run async runs until SIGTERM"
    )
    parser.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    # One process: its metrics stay in memory, apart from the files of `serve`'s workers.
    settings = worker_settings(settings).replace(metrics_dir="")
    pm = get_plugin_manager(settings)
    services = build_worker(settings, ready_store(settings, pm), pm)
    metrics_server = None
    try:
        if settings.worker_metrics_port:
            access = access_service(settings, pm, services.store)
            metrics_server = serve_metrics(
                services.metrics,
                settings.host,
                settings.worker_metrics_port,
                authorize=access.require_metrics,
            )
            log.info("metrics on http://%s:%s/metrics", settings.host, settings.worker_metrics_port)
        status = services.store.schema_status()
        log.info(
            "codeactions %s worker: %s store at schema version %s; step types: %s",
            __version__,
            services.store.kind,
            status.current,
            ", ".join(services.step_runners.types()),
        )
        services.flow_driver.start()
        if settings.rabbitmq_url:
            consumer = DueConsumer(settings, services.flow_driver)
            async_runs = AsyncRunWorker(settings, services.async_runs)
            async_runs.start()
            try:
                with stop_on_signals(consumer):
                    consumer.run()
            finally:
                consumer.connection.release()
                async_runs.stop()
        else:
            log.info("no RABBITMQ_URL: taking due executions from the store only")
            wait_for_signal()
        log.info("stopping: letting running steps finish")
    finally:
        services.close()
        if metrics_server is not None:
            metrics_server.shutdown()
            metrics_server.server_close()
    log.info("worker stopped")
    return 0


def wait_for_signal() -> None:
    """Block until SIGTERM or SIGINT."""
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        while not stop.wait(1.0):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


READY_SECONDS = 30.0


def worker_settings(settings: Settings) -> Settings:
    """A worker's pool holds every async run and flow step it may take at once, whatever
    the project: the broker already hands runs over one by one, oldest first."""
    size = max(
        settings.worker_pool_size, settings.async_worker_threads + settings.flow_worker_threads
    )
    return settings.replace(worker_pool_size=size, project_max_concurrent_runs=size)


class AsyncRunWorker:
    def __init__(self, settings: Settings, service: AsyncRunService) -> None:
        worker = this_process()

        def execute(job: dict[str, Any], redelivered: bool) -> None:
            service.execute(job, redelivered=redelivered, worker=worker)

        self.consumer = RunConsumer(settings, execute, settings.async_worker_threads)
        self._thread = threading.Thread(target=self._run, name="async-runs", daemon=True)

    def _run(self) -> None:
        try:
            self.consumer.run()
        except Exception:
            log.exception("the async run consumer stopped")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish the runs in hand and stop (returns once they are acknowledged)."""
        self.consumer.stop()
        self._thread.join()
        self.consumer.close()
        log.info("async runs: stopped")
