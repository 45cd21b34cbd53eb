"""The one way processes connect to Redis (rate limits, locks, health)."""

from __future__ import annotations

import redis

TIMEOUT_SECONDS = 0.5
"""A request never waits longer than this for Redis: it is a fast local service or down."""


def connect_redis(url: str, timeout: float = TIMEOUT_SECONDS) -> redis.Redis:
    """A client with a thread-safe connection pool; connects lazily, on first use."""
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30
    )
