"""The async-run side of ``codeactions worker``: a consumer thread on the run queue.

Started beside the flow executions' consumer when RABBITMQ_URL is set; on SIGTERM it
stops taking runs, lets the ones in hand finish (stored, called back, acknowledged)
and returns.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from codeactions_core.async_queue import RunConsumer
from codeactions_core.services import Services
from codeactions_core.services.async_runs import this_process
from codeactions_core.settings import Settings

log = logging.getLogger("codeactions.worker")

READY_SECONDS = 30.0


def worker_settings(settings: Settings) -> Settings:
    """A worker's pool holds every async run and flow step it may take at once, whatever
    the project: the broker already hands runs over one by one, oldest first."""
    size = max(
        settings.worker_pool_size, settings.async_worker_threads + settings.flow_worker_threads
    )
    return settings.replace(worker_pool_size=size, project_max_concurrent_runs=size)


class AsyncRunWorker:
    def __init__(self, settings: Settings, services: Services) -> None:
        service = services.async_runs
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
