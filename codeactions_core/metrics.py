"""Prometheus metrics, with the old service's names kept for existing dashboards.

Under ``codeactions serve`` every gunicorn worker writes its values to files in
one directory (prometheus-client's multiprocess mode, ``METRICS_DIR``, emptied
when ``serve`` starts) and ``/metrics`` adds them up, so a scrape sees the whole
server whichever worker answers. Elsewhere (tests, tools) values stay in memory.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)

from codeactions_core.errors import CodeActionsError, Unauthenticated, Unavailable
from codeactions_core.settings.environment import export_metrics_dir

RUN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"
SIZE_BUCKETS = (64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216)
MAX_HOST_LABELS = 20

LEGACY_COUNTERS = ("ca_run_count", "ca_code_created_count", "ca_code_updated_count")
"""Counters the Go service exposed without the ``_total`` suffix prometheus-client adds."""
_LEGACY_TOTAL = re.compile(
    rf"^(# (?:HELP|TYPE) )?({'|'.join(LEGACY_COUNTERS)})_total\b", re.MULTILINE
)


def prepare_metrics_dir(directory: str | Path) -> Path:
    """Create ``directory`` and remove values a previous server left (call before workers start)."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
    return path


def mark_worker_dead(directory: str | Path, pid: int) -> None:
    """Drop a dead worker's live gauges (its counters keep counting in the sum)."""
    multiprocess.mark_process_dead(pid, str(directory))


class Metrics:
    """One process's metrics. ``multiprocess_dir``: share values with the other workers there."""

    def __init__(
        self, multiprocess_dir: str | Path | None = None, *, code_labels: bool = True
    ) -> None:
        self.code_labels = code_labels
        """False: ``project_uuid`` and ``code_id`` are left empty (METRICS_CODE_LABELS)."""
        self.multiprocess_dir = str(multiprocess_dir) if multiprocess_dir else None
        if self.multiprocess_dir:
            export_metrics_dir(self.multiprocess_dir)
            # prometheus-client picks its value class when first imported; the
            # directory may only be known now (a worker of `serve`), so pick again.
            values.ValueClass = values.get_value_class()
        disable_created_metrics()  # the old service exposed no *_created series
        self.registry = CollectorRegistry(auto_describe=True)
        code_labels = ("project_uuid", "code_id")
        self.runs = Counter("ca_run_count", "Runs of a code.", code_labels, registry=self.registry)
        self.run_elapsed = Histogram(
            "ca_run_elapsed",
            "Seconds a run took, from request to stored result.",
            code_labels,
            buckets=RUN_BUCKETS,
            registry=self.registry,
        )
        self.codes_created = Counter(
            "ca_code_created_count", "Codes created.", code_labels, registry=self.registry
        )
        self.codes_updated = Counter(
            "ca_code_updated_count", "Codes updated.", code_labels, registry=self.registry
        )
        self.pool_workers = self._gauge(
            "workerpool_workers_total", "Runs a server executes at once."
        )
        self.pool_busy = self._gauge("workerpool_workers_busy", "Runs executing now.")
        self.pool_queued = self._gauge("workerpool_queue_size", "Runs waiting for a worker.")
        self.pool_capacity = self._gauge("workerpool_queue_capacity", "Runs that may wait.")
        self.tasks_submitted = self._counter(
            "workerpool_tasks_submitted", "Runs that got a worker."
        )
        self.tasks_completed = self._counter("workerpool_tasks_completed", "Runs that completed.")
        self.tasks_failed = self._counter(
            "workerpool_tasks_failed", "Runs that failed (not timeouts)."
        )
        self.tasks_rejected = self._counter(
            "workerpool_tasks_rejected", "Runs refused: queue full."
        )
        self.tasks_timeout = self._counter(
            "workerpool_tasks_timeout", "Runs killed at their timeout."
        )
        self.queue_wait = Histogram(
            "workerpool_queue_wait_seconds",
            "Seconds a run waited for a worker.",
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        self.task_duration = Histogram(
            "workerpool_task_duration_seconds",
            "Seconds a run held its worker.",
            buckets=RUN_BUCKETS,
            registry=self.registry,
        )
        self.http_requests = Counter(
            "http_requests",
            "HTTP requests by route template.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "Seconds to answer an HTTP request, by route template.",
            ("method", "route"),
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        # The old service's HTTP series (echo's Prometheus middleware, subsystem "codeactions"),
        # kept beside the new ones for existing dashboards; ``url`` is the route template.
        old_labels = ("code", "method", "host", "url")
        self.old_requests = Counter(
            "codeactions_requests",
            "How many HTTP requests processed, partitioned by status code and HTTP method.",
            old_labels,
            registry=self.registry,
        )
        self.old_duration = Histogram(
            "codeactions_request_duration_seconds",
            "The HTTP request latencies in seconds.",
            old_labels,
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        self.old_request_size = Histogram(
            "codeactions_request_size_bytes",
            "The HTTP request sizes in bytes.",
            old_labels,
            buckets=SIZE_BUCKETS,
            registry=self.registry,
        )
        self.old_response_size = Histogram(
            "codeactions_response_size_bytes",
            "The HTTP response sizes in bytes.",
            old_labels,
            buckets=SIZE_BUCKETS,
            registry=self.registry,
        )
        self._hosts: set[str] = set()
        self._hosts_lock = threading.Lock()
        self.flow_executions = Counter(
            "ca_flow_executions_finished",
            "Flow executions that ended, by status.",
            ("status",),
            registry=self.registry,
        )
        self.flow_steps = Counter(
            "ca_flow_steps",
            "Flow steps run, by step type and outcome (completed, waiting, failed).",
            ("type", "status"),
            registry=self.registry,
        )
        self.flow_step_duration = Histogram(
            "ca_flow_step_duration_seconds",
            "Seconds a flow step ran, by step type.",
            ("type",),
            buckets=RUN_BUCKETS,
            registry=self.registry,
        )
        self.rate_limiter_errors = self._counter(
            "ca_rate_limiter_errors",
            "Requests the rate limiter could not count because Redis was unreachable.",
        )

    def _code(self, project_uuid: str, code_id: str) -> tuple[str, str]:
        return (project_uuid, code_id) if self.code_labels else ("", "")

    def _gauge(self, name: str, help: str) -> Gauge:
        return Gauge(name, help, registry=self.registry, multiprocess_mode="livesum")

    def _counter(self, name: str, help: str) -> Counter:
        return Counter(name, help, registry=self.registry)

    # -- events ---------------------------------------------------------------------------

    def pool_sized(self, workers: int, capacity: int) -> None:
        self.pool_workers.set(workers)
        self.pool_capacity.set(capacity)

    def pool_occupancy(self, busy: int, queued: int) -> None:
        self.pool_busy.set(busy)
        self.pool_queued.set(queued)

    def pool_rejected(self) -> None:
        self.tasks_rejected.inc()

    def pool_started(self, waited_seconds: float) -> None:
        self.tasks_submitted.inc()
        self.queue_wait.observe(waited_seconds)

    def pool_finished(self, held_seconds: float) -> None:
        self.task_duration.observe(held_seconds)

    def run_finished(
        self, project_uuid: str, code_id: str, *, failed: bool, timed_out: bool, seconds: float
    ) -> None:
        labels = self._code(project_uuid, code_id)
        self.runs.labels(*labels).inc()
        self.run_elapsed.labels(*labels).observe(seconds)
        if timed_out:
            self.tasks_timeout.inc()
        elif failed:
            self.tasks_failed.inc()
        else:
            self.tasks_completed.inc()

    def code_saved(self, project_uuid: str, code_id: str, *, created: bool) -> None:
        (self.codes_created if created else self.codes_updated).labels(
            *self._code(project_uuid, code_id)
        ).inc()

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in HTTP_METHODS else "OTHER"
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_duration.labels(method, route).observe(seconds)

    def http_exchange(
        self,
        method: str,
        route: str,
        status: int,
        seconds: float,
        *,
        host: str,
        request_bytes: int,
        response_bytes: int,
    ) -> None:
        """The old service's series of one request (``url`` = route template)."""
        method = method if method in HTTP_METHODS else "OTHER"
        labels = (str(status), method, self._host_label(host), route)
        self.old_requests.labels(*labels).inc()
        self.old_duration.labels(*labels).observe(seconds)
        self.old_request_size.labels(*labels).observe(request_bytes)
        self.old_response_size.labels(*labels).observe(response_bytes)

    def _host_label(self, host: str) -> str:
        """The Host a client sent, as the old service labelled it; past MAX_HOST_LABELS
        distinct values ``other`` (a public route must not multiply series at will)."""
        host = host[:100]
        with self._hosts_lock:
            if host in self._hosts:
                return host
            if len(self._hosts) < MAX_HOST_LABELS:
                self._hosts.add(host)
                return host
        return "other"

    def flow_step_ran(self, step_type: str, status: str, seconds: float) -> None:
        self.flow_steps.labels(step_type, status).inc()
        self.flow_step_duration.labels(step_type).observe(seconds)

    def flow_execution_finished(self, status: str) -> None:
        self.flow_executions.labels(status).inc()

    # -- exposition -----------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The text exposition of every worker's values, and its content type."""
        if self.multiprocess_dir:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        else:
            registry = self.registry
        text = generate_latest(registry).decode("utf-8")
        return _LEGACY_TOTAL.sub(r"\1\2", text).encode("utf-8"), CONTENT_TYPE_LATEST


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


REFUSED: tuple[tuple[type[CodeActionsError], str], ...] = (
    (Unauthenticated, "401 Unauthorized"),
    (Unavailable, "503 Service Unavailable"),
)


def serve_metrics(
    metrics: Metrics,
    host: str,
    port: int,
    authorize: Callable[[Mapping[str, str]], None] | None = None,
) -> WSGIServer:
    """Serve ``GET /metrics`` on ``host:port`` from a thread (for processes other than
    ``serve``, which answers /metrics itself); ``shutdown()`` the server to stop.
    ``authorize`` (the request's headers, names in lower case) refuses a caller by raising."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"only /metrics here\n"]
        if authorize is not None:
            headers = {
                key[5:].replace("_", "-").lower(): value
                for key, value in environ.items()
                if key.startswith("HTTP_")
            }
            try:
                authorize(headers)
            except CodeActionsError as exc:
                status = next(
                    (text for kind, text in REFUSED if isinstance(exc, kind)), "403 Forbidden"
                )
                start_response(status, [("Content-Type", "application/json")])
                return [json.dumps({"message": exc.message}).encode()]
        body, content_type = metrics.render()
        start_response(
            "200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        )
        return [body]

    server = make_server(host, port, app, server_class=_ThreadingServer, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
