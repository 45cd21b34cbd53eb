"""Per-code rate limits of ``/action/endpoint``: a fixed window of
``CODE_LIMITER_MAX_REQUESTS`` requests per ``CODE_LIMITER_WINDOW_WINDOW`` seconds.

With Redis the count is shared by every worker and replica (one atomic round
trip per request, the old service's ``rate_limit:{code_id}`` keys); without it
each server process counts for itself.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from codeactions_core.errors import Unavailable
from codeactions_core.redis_client import connect_redis
from codeactions_core.settings import Settings

log = logging.getLogger(__name__)

KEY_PREFIX = "rate_limit:"
REDIS_RETRY_SECONDS = 1.0
"""After Redis failed, how long requests skip it rather than each waiting for a timeout."""
WARNING_INTERVAL_SECONDS = 30.0

# INCR and, for the first hit of a window (or a key somehow left without expiry),
# PEXPIRE; answers the count and the milliseconds left in the window.
HIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    """Whole seconds until the window ends (at least 1)."""
    counted: bool = True
    """False when the limiter could not count (Redis down, failing open)."""

    def headers(self) -> dict[str, str]:
        """``X-RateLimit-*`` (and ``Retry-After`` when refused); none when nothing was counted."""
        if not self.counted:
            return {}
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_seconds)
        return headers


class RateLimiter(Protocol):
    limit: int
    window: int

    def hit(self, key: str) -> RateDecision:
        """Count one request for ``key`` and decide whether it may go on."""


def decide(limit: int, count: int, reset_ms: float, counted: bool = True) -> RateDecision:
    return RateDecision(
        allowed=count <= limit,
        limit=limit,
        remaining=max(0, limit - count),
        reset_seconds=max(1, math.ceil(reset_ms / 1000)),
        counted=counted,
    )


class MemoryRateLimiter:
    """Fixed windows counted in this process (the embedded default)."""

    def __init__(
        self, limit: int, window: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}
        self._next_sweep = clock() + window

    def hit(self, key: str) -> RateDecision:
        now = self._clock()
        with self._lock:
            if now >= self._next_sweep:
                self._sweep(now)
            ends, count = self._windows.get(key, (0.0, 0))
            if now >= ends:
                ends, count = now + self.window, 0
            count += 1
            self._windows[key] = (ends, count)
        return decide(self.limit, count, (ends - now) * 1000)

    def _sweep(self, now: float) -> None:
        """Forget finished windows so that memory stays bounded by the active keys."""
        self._windows = {key: entry for key, entry in self._windows.items() if entry[0] > now}
        self._next_sweep = now + self.window


class LimiterUnavailable(Unavailable):
    """Redis could not count the request and the limiter fails closed (503)."""


class RedisRateLimiter:
    """Fixed windows counted in Redis: exact across every process sharing it."""

    def __init__(
        self,
        client: Any,
        limit: int,
        window: int,
        *,
        fail_open: bool = True,
        on_failure: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._script = client.register_script(HIT_SCRIPT)
        self._fail_open = fail_open
        self._on_failure = on_failure
        self._clock = clock
        self._skip_until = 0.0
        self._next_warning = 0.0

    def hit(self, key: str) -> RateDecision:
        if self._clock() >= self._skip_until:
            try:
                count, ttl_ms = self._script(keys=[KEY_PREFIX + key], args=[self.window * 1000])
                return decide(self.limit, int(count), float(ttl_ms))
            except Exception as exc:  # noqa: BLE001  (any Redis failure: fail open or refuse)
                self._skip_until = self._clock() + REDIS_RETRY_SECONDS
                self._warn(exc)
        self._on_failure()
        if self._fail_open:
            return decide(self.limit, 0, self.window * 1000, counted=False)
        raise LimiterUnavailable(
            "the rate limiter cannot reach Redis and "
            "FLOWS_CODE_ACTIONS_RATE_LIMIT_FAIL_OPEN is false"
        )

    def _warn(self, exc: Exception) -> None:
        now = self._clock()
        if now < self._next_warning:
            return
        self._next_warning = now + WARNING_INTERVAL_SECONDS
        action = "letting requests through uncounted" if self._fail_open else "refusing requests"
        log.warning("rate limiter: Redis unavailable (%s: %s); %s", type(exc).__name__, exc, action)


def build_rate_limiter(
    settings: Settings, on_failure: Callable[[], None] = lambda: None
) -> RateLimiter:
    """Redis when ``FLOWS_CODE_ACTIONS_REDIS`` is set, else this process's own counts."""
    limit, window = settings.code_limiter_max_requests, settings.code_limiter_window
    if not settings.redis:
        return MemoryRateLimiter(limit, window)
    return RedisRateLimiter(
        connect_redis(settings.redis, timeout=settings.redis_timeout),
        limit,
        window,
        fail_open=settings.rate_limit_fail_open,
        on_failure=on_failure,
    )
