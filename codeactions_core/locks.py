"""The lock that keeps scheduler replicas from doing the same pass at once:
Redis when ``settings.redis`` is set, else the store's own ``locks``."""

from __future__ import annotations

import functools
import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import redis

from codeactions_core.errors import ConfigurationError, StoreError
from codeactions_core.redis_client import connect_redis
from codeactions_core.settings import Settings
from codeactions_core.store import LockRepository, Store

log = logging.getLogger(__name__)

KEY_PREFIX = "codeactions:lock:"
SOCKET_TIMEOUT_SECONDS = 5.0  # a pass is no request: it may wait for a busy Redis

# Delete the key only while it still holds our value: atomic in Redis, so a holder whose
# lock expired and was taken by another never frees the other's.
RELEASE_SCRIPT = """
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
end
return 0
"""

T = TypeVar("T")


def new_holder() -> str:
    """This process's name in the locks and leases it takes: host, process, a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def redis_errors_as_store_errors(method: Callable[..., T]) -> Callable[..., T]:
    """Raise StoreError, naming no URL, when Redis fails."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return method(*args, **kwargs)
        except redis.RedisError as exc:
            raise StoreError(f"Redis unavailable for locks: {type(exc).__name__}") from exc

    return wrapper


class RedisLocks:
    """A lock is the key ``codeactions:lock:<name>`` holding its holder, with a PX expiry."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._release = client.register_script(RELEASE_SCRIPT)

    @classmethod
    def from_url(cls, url: str, timeout: float = SOCKET_TIMEOUT_SECONDS) -> RedisLocks:
        """Locks on the Redis a URL names (it connects on first use)."""
        try:
            client = connect_redis(url, timeout=timeout)
        except ValueError as exc:
            raise ConfigurationError(
                f"FLOWS_CODE_ACTIONS_REDIS: not a usable Redis URL: {exc}"
            ) from None
        return cls(client)

    @redis_errors_as_store_errors
    def try_acquire(self, name: str, holder: str, ttl: timedelta) -> bool:
        milliseconds = max(1, int(ttl.total_seconds() * 1000))
        return bool(self._client.set(KEY_PREFIX + name, holder, nx=True, px=milliseconds))

    @redis_errors_as_store_errors
    def release(self, name: str, holder: str) -> bool:
        return bool(self._release(keys=[KEY_PREFIX + name], args=[holder]))

    def close(self) -> None:
        self._client.close()


class FallbackLocks:
    """Redis locks, and the database's own when Redis cannot be reached: a pass still runs
    (one replica at a time among those that reach the same lock)."""

    def __init__(self, primary: RedisLocks, fallback: LockRepository) -> None:
        self.primary = primary
        self.fallback = fallback
        self._taken_from: dict[tuple[str, str], LockRepository] = {}

    def try_acquire(self, name: str, holder: str, ttl: timedelta) -> bool:
        try:
            taken = self.primary.try_acquire(name, holder, ttl)
            locks: LockRepository = self.primary
        except StoreError as exc:
            log.warning("%s; taking the %r lock in the database instead", exc.message, name)
            taken = self.fallback.try_acquire(name, holder, ttl)
            locks = self.fallback
        if taken:
            self._taken_from[(name, holder)] = locks
        return taken

    def release(self, name: str, holder: str) -> bool:
        locks = self._taken_from.pop((name, holder), self.primary)
        return locks.release(name, holder)

    def close(self) -> None:
        self.primary.close()


def open_locks(settings: Settings, store: Store) -> LockRepository:
    """Redis locks (falling back on the database's) when a Redis URL is set, else the
    store's database locks."""
    if settings.redis:
        client = RedisLocks.from_url(settings.redis, timeout=max(settings.redis_timeout, 5.0))
        return FallbackLocks(client, store.locks)
    return store.locks
