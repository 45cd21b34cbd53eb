"""Process-wide logging and error reporting."""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable

from codeactions_core.settings import Settings

FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"

log = logging.getLogger(__name__)


def configure_logging(level: str, throttle_seconds: float = 0.0) -> None:
    """Log to stderr at ``level``; repeated warnings and errors are throttled (see
    ``Throttle``) when ``throttle_seconds`` > 0."""
    logging.basicConfig(level=level.upper(), format=FORMAT, force=True)
    if throttle_seconds > 0:
        for handler in logging.getLogger().handlers:
            handler.addFilter(Throttle(throttle_seconds))


class Throttle(logging.Filter):
    """Lets the first of a run of identical warnings or errors through, drops the ones that
    follow within ``interval`` seconds, and notes their count on the next one let through:
    "(N more like this since it was last logged)". Identical: same logger, level, message and
    exception type (a database outage logs one line per interval, not one per request: the
    API's store-failure line names the route, not the raw path)."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple, list[float | int]] = {}  # key -> [window start, suppressed]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        exc_type = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        key = (record.name, record.levelno, record.getMessage(), exc_type)
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen[0] < self.interval:
                seen[1] += 1
                return False
            suppressed = int(seen[1]) if seen is not None else 0
            self._seen[key] = [now, 0]
            if len(self._seen) > 10_000:  # bounded: forget the oldest windows
                for old in sorted(self._seen, key=lambda k: self._seen[k][0])[:5_000]:
                    del self._seen[old]
        if suppressed:
            record.msg = f"{record.msg} ({suppressed} more like this since it was last logged)"
        return True


def configure_error_reporting(settings: Settings) -> bool:
    """Send errors to Sentry when a DSN is set and ``sentry-sdk`` is installed."""
    if not settings.sentry_dsn:
        return False
    try:
        sentry_sdk = importlib.import_module("sentry_sdk")
    except ImportError:
        log.warning(
            "FLOWS_CODE_ACTIONS_SENTRY_DSN is set but sentry-sdk is not installed: "
            "errors are only logged (pip install sentry-sdk)"
        )
        return False
    sentry_sdk.init(dsn=settings.sentry_dsn, environment=settings.environment)
    return True
