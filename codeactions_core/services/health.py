"""``/health``: every configured dependency checked at once, the report cached briefly.

Required dependencies (the database, the data directory's free space) make the report
``unhealthy``; optional ones (Redis, which fails open; RabbitMQ; a separate log store) only
``degraded``. Readiness (``/health/ready``) also needs a ready runtime and a process that is not
draining."""

from __future__ import annotations

import os
import platform
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from codeactions_core import __version__
from codeactions_core.drain import DRAIN, DrainState
from codeactions_core.model import rfc3339, utcnow
from codeactions_core.redis_client import connect_redis
from codeactions_core.settings import Settings
from codeactions_core.store import LogStore, Store

CHECK_TIMEOUT_SECONDS = 3.0
OPTIONAL = frozenset({"redis", "rabbitmq"})
"""Dependencies the API serves runs without (the log store is added when separate)."""
STARTED = time.monotonic()

Check = Callable[[], str]
"""Raises when the dependency is unhealthy; returns a short message when healthy."""


def timed(check: Check) -> dict[str, Any]:
    """Run one check: its status, message, latency and when it ran."""
    started = time.perf_counter()
    try:
        status, message = "healthy", check()
    except Exception as exc:  # noqa: BLE001  (any failure is a finding about the dependency)
        status, message = "unhealthy", f"{type(exc).__name__}: {exc}"
    return {
        "status": status,
        "message": message,
        "latency": f"{(time.perf_counter() - started) * 1000:.2f}ms",
        "timestamp": rfc3339(utcnow()),
    }


def run_concurrently(checks: Mapping[str, Check], timeout: float) -> dict[str, dict[str, Any]]:
    """Every check in its own thread; one that does not answer within ``timeout`` is unhealthy."""
    if not checks:
        return {}
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="health")
    try:
        futures = {name: pool.submit(timed, check) for name, check in checks.items()}
        deadline = time.monotonic() + timeout
        results = {}
        for name, future in futures.items():
            try:
                results[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                results[name] = {
                    "status": "unhealthy",
                    "message": f"no answer within {timeout:g} s",
                    "latency": f"{timeout * 1000:.2f}ms",
                    "timestamp": rfc3339(utcnow()),
                }
        return results
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a hung check must not hold the request


class HealthService:
    """Checks the database, and Redis, RabbitMQ and the log store when configured."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        log_store: LogStore,
        runtimes: Any,
        clock: Callable[[], float] = time.monotonic,
        check_timeout: float = CHECK_TIMEOUT_SECONDS,
        drain: DrainState = DRAIN,
    ) -> None:
        self._settings = settings
        self._drain = drain
        self.optional = set(OPTIONAL)
        self.disk_paths = data_paths(settings, getattr(store, "directories", ()))
        self._check_timeout = check_timeout
        self._runtimes = runtimes
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: dict[str, Any] | None = None
        self._cached_until = 0.0
        self.checks: dict[str, Check] = {"database": ping_check(store.ping, store.kind)}
        if settings.redis:
            redis = connect_redis(settings.redis, timeout=check_timeout)
            self.checks["redis"] = ping_check(redis.ping, "redis")
        if settings.rabbitmq_url:
            self.checks["rabbitmq"] = rabbitmq_check(settings.rabbitmq_url, check_timeout)
        if log_store is not store.logs and callable(getattr(log_store, "ping", None)):
            kind = getattr(log_store, "kind", "log_store")
            self.checks[kind] = ping_check(log_store.ping, kind)
            self.optional.add(kind)

    def report(self) -> dict[str, Any]:
        """The latest report; checks run again once it is older than HEALTH_CHECK_CACHE_TIME.

        Concurrent callers of a stale report wait for one round of checks."""
        with self._lock:
            if self._cached is None or self._clock() >= self._cached_until:
                self._cached = self._check_now()
                self._cached_until = self._clock() + self._settings.health_check_cache_time
            return self._cached

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether this process can serve runs now, and why not: draining, a required
        dependency down, the data directory (nearly) full, or no runtime ready."""
        if self._drain.draining:
            return False, {"status": "unavailable", "reasons": ["server shutting down"]}
        report = self.report()
        reasons = [
            f"{name}: {check['message']}"
            for name, check in report["services"].items()
            if check["status"] != "healthy" and name not in self.optional
        ]
        if report["disk"]["status"] != "healthy":
            reasons.append(f"disk: {report['disk']['message']}")
        started = getattr(self._runtimes, "started", True)  # not yet: they start on first use
        if started and not any(runtime["ready"] for runtime in report["runtimes"].values()):
            reasons.append("runtimes: no runtime is ready")
        if reasons:
            return False, {"status": "unavailable", "reasons": reasons}
        degraded = [
            name for name, check in report["services"].items() if check["status"] != "healthy"
        ]
        return True, {"status": "degraded" if degraded else "ready", "degraded": degraded}

    def _check_now(self) -> dict[str, Any]:
        services = run_concurrently(self.checks, self._check_timeout)
        disk = timed(disk_check(self.disk_paths, self._settings.min_free_disk_mb))
        failing = {name for name, check in services.items() if check["status"] != "healthy"}
        if disk["status"] != "healthy" or failing - self.optional:
            status = "unhealthy"
        else:
            status = "degraded" if failing else "healthy"
        return {
            "status": status,
            "disk": disk,
            "draining": self._drain.draining,
            "timestamp": rfc3339(utcnow()),
            "uptime": round(time.monotonic() - STARTED, 3),
            "version": __version__,
            "environment": self._settings.environment,
            "system": system_report(),
            "services": services,
            **runtime_report(self._runtimes),
        }


def data_paths(settings: Settings, store_directories: Iterable[str]) -> list[str]:
    """The directories whose free space matters: the data directory and the store's own."""
    paths = [settings.data_dir, *store_directories]
    return list(dict.fromkeys(os.path.abspath(path) for path in paths))


def disk_check(paths: list[str], min_free_mb: int) -> Check:
    """Healthy while every directory has at least ``min_free_mb`` MiB free (one that does not
    exist yet is skipped)."""

    def check() -> str:
        lowest = None
        for path in paths:
            if not os.path.isdir(path):
                continue
            free_mb = shutil.disk_usage(path).free / (1024 * 1024)
            if free_mb < min_free_mb:
                raise OSError(
                    f"only {free_mb:.1f} MiB free on the data directory "
                    f"{path} (at least {min_free_mb} MiB needed: MIN_FREE_DISK_MB)"
                )
            lowest = free_mb if lowest is None else min(lowest, free_mb)
        return "no data directory" if lowest is None else f"{lowest:.0f} MiB free"

    return check


def rabbitmq_check(url: str, timeout: float) -> Check:
    """Healthy when an AMQP connection opens (one attempt, no retries)."""

    def check() -> str:
        from kombu import Connection

        with Connection(url, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=0, timeout=timeout)
        return "rabbitmq reachable"

    return check


def ping_check(ping: Callable[[], object], what: str) -> Check:
    """A check that is healthy when ``ping`` returns."""

    def check() -> str:
        ping()
        return f"{what} reachable"

    return check


def system_report() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "pid": os.getpid(),
        "load_average": [round(value, 2) for value in load] if load else None,
    }


PATH = re.compile(r"(?<![\w:/])/[^\s,;'\"()\[\]]+")


def public_report(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report for anonymous callers: no process ids, no file paths."""
    return _scrubbed(report)


def _scrubbed(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _scrubbed(item) for key, item in value.items() if key != "pid"}
    if isinstance(value, list | tuple):
        return [_scrubbed(item) for item in value]
    if isinstance(value, str):
        return PATH.sub("<path>", value)
    return value


def runtime_report(runtimes: Any) -> dict[str, Any]:
    """Each runtime's readiness and the sandbox protections in force (informational:
    a runtime this deployment does not use must not make it unhealthy)."""
    health = runtimes.health()
    protections = next((h.details for h in health.values() if h.ready and h.details), {})
    return {
        "runtimes": {
            language: {"ready": h.ready, "message": h.message} for language, h in health.items()
        },
        "sandbox": protections,
    }
