"""``codeactions serve``: the API on gunicorn, each worker an asyncio front (uvicorn) with the
Falcon app in a thread pool behind it (``codeactions_core.web.worker``)."""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.app.base import BaseApplication

from codeactions_core.services.instance import ServerInstance
from codeactions_core.settings import Settings
from codeactions_core.web.worker import ApiWorker

log = logging.getLogger(__name__)

DRAIN_MARGIN_SECONDS = 15


class ApiServer(BaseApplication):
    """gunicorn configured from settings; each worker builds its own app and services."""

    def __init__(
        self, settings: Settings, *, instance: ServerInstance | None = None, **overrides: Any
    ) -> None:
        self.settings = settings
        self.instance = instance
        """Which ``serve`` this is: its workers' runs carry its id (see services.instance)."""
        self.options = {
            "bind": f"{settings.host}:{settings.port}",
            "workers": settings.web_workers,
            "worker_class": "codeactions_core.web.worker.ApiWorker",
            "proc_name": "codeactions",
            "timeout": 60,
            # the worker drains for GRACEFUL_TIMEOUT, then needs a moment to fail what is left
            "graceful_timeout": settings.graceful_timeout + DRAIN_MARGIN_SECONDS,
            "keepalive": 5,
            "loglevel": settings.log_level,
            "accesslog": "-" if settings.log_level == "debug" else None,
            "worker_tmp_dir": "/dev/shm",
            "control_socket_disable": True,  # replicas and tests share a home directory
            "worker_exit": _close_worker_services,
            "post_fork": self._post_fork,
            "child_exit": _forget_worker_metrics if settings.metrics_dir else None,
            **overrides,
        }
        ApiWorker.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if value is not None:
                self.cfg.set(key, value)

    def load(self) -> Any:
        from codeactions_core.web.app import create_app
        from codeactions_core.wiring import build_services

        services = build_services(self.settings, instance=self.instance.id if self.instance else "")
        ApiWorker.services = services
        services.start()
        return create_app(services=services)

    def _post_fork(self, server: Any, worker: Any) -> None:
        """A worker does not keep the master's lock on the instance file open: once the
        master is gone, a restarted server may take it over."""
        if self.instance is not None and self.instance.handle is not None:
            self.instance.handle.close()


def _close_worker_services(server: Any, worker: Any) -> None:
    if ApiWorker.services is not None:
        ApiWorker.services.close()


def _forget_worker_metrics(server: Any, worker: Any) -> None:
    from codeactions_core.metrics import mark_worker_dead

    mark_worker_dead(server.app.settings.metrics_dir, worker.pid)
