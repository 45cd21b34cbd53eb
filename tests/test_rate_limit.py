"""Per-code rate limits of /action/endpoint: in-process, on the real Redis, and shared by
two real server processes."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests

from codeactions_core.errors import Unavailable
from codeactions_core.ratelimit import (
    KEY_PREFIX,
    LimiterUnavailable,
    MemoryRateLimiter,
    RedisRateLimiter,
    build_rate_limiter,
)
from codeactions_core.redis_client import connect_redis
from codeactions_core.settings import Settings
from codeactions_core.testing.api import api_client
from codeactions_core.testing.server import free_port, run_cli, start_server
from tests.support.samples import PYTHON_ACTION

DEAD_REDIS = f"redis://:s3cret-password@127.0.0.1:{free_port()}/0"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def unique_key() -> str:
    return f"test-{uuid.uuid4()}"


# -- in-process ---------------------------------------------------------------------------


def test_memory_limiter_counts_a_fixed_window_per_key():
    clock = FakeClock()
    limiter = MemoryRateLimiter(limit=3, window=10, clock=clock)
    decisions = [limiter.hit("a") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert limiter.hit("b").allowed, "another code has its own count"
    clock.now += 9.5
    late = limiter.hit("a")
    assert (late.allowed, late.reset_seconds) == (False, 1)
    clock.now += 0.5
    assert limiter.hit("a").remaining == 2, "a new window starts"


def test_memory_limiter_forgets_finished_windows():
    clock = FakeClock()
    limiter = MemoryRateLimiter(limit=1, window=5, clock=clock)
    for i in range(1000):
        limiter.hit(f"code-{i}")
    clock.now += 6
    limiter.hit("fresh")
    assert len(limiter._windows) == 1


def test_headers_of_a_decision():
    limiter = MemoryRateLimiter(limit=1, window=60, clock=FakeClock())
    assert limiter.hit("a").headers() == {
        "X-RateLimit-Limit": "1",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "60",
    }
    assert limiter.hit("a").headers()["Retry-After"] == "60"


def test_without_redis_the_limiter_is_in_process(tmp_path):
    assert isinstance(build_rate_limiter(Settings(data_dir=str(tmp_path))), MemoryRateLimiter)


# -- Redis ----------------------------------------------------------------------------------


@pytest.fixture
def redis_client(redis_url):
    client = connect_redis(redis_url)
    yield client
    client.close()


def test_redis_limiter_counts_in_one_key_that_expires(redis_client):
    limiter = RedisRateLimiter(redis_client, limit=2, window=30)
    key = unique_key()
    decisions = [limiter.hit(key) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert decisions[2].headers()["Retry-After"] == "30"
    assert int(redis_client.get(KEY_PREFIX + key)) == 3
    assert 29_000 < redis_client.pttl(KEY_PREFIX + key) <= 30_000


def test_redis_limiter_repairs_a_key_without_expiry(redis_client):
    key = unique_key()
    redis_client.set(KEY_PREFIX + key, 5)
    RedisRateLimiter(redis_client, limit=10, window=7).hit(key)
    assert 0 < redis_client.pttl(KEY_PREFIX + key) <= 7_000


def test_redis_limiter_is_exact_under_concurrency(redis_client):
    limiter = RedisRateLimiter(redis_client, limit=150, window=60)
    key = unique_key()
    with ThreadPoolExecutor(16) as pool:
        decisions = list(pool.map(lambda _: limiter.hit(key), range(400)))
    assert sum(d.allowed for d in decisions) == 150
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(150))


def test_redis_down_fails_open_counted_as_a_metric_and_warned_once(caplog):
    clock, failures = FakeClock(), []
    limiter = RedisRateLimiter(
        connect_redis(DEAD_REDIS),
        limit=1,
        window=60,
        on_failure=lambda: failures.append(1),
        clock=clock,
    )
    decisions = [limiter.hit("a") for _ in range(3)]
    assert all(d.allowed and not d.counted and d.headers() == {} for d in decisions)
    assert len(failures) == 3
    warnings = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(warnings) == 1 and "letting requests through" in warnings[0].getMessage()
    assert "s3cret-password" not in caplog.text


def test_redis_down_fails_closed_when_configured():
    limiter = RedisRateLimiter(connect_redis(DEAD_REDIS), limit=1, window=60, fail_open=False)
    with pytest.raises(LimiterUnavailable) as raised:
        limiter.hit("a")
    assert isinstance(raised.value, Unavailable)
    assert "RATE_LIMIT_FAIL_OPEN" in raised.value.message


def test_redis_comes_back_after_a_failure(redis_client, redis_url):
    clock = FakeClock()
    limiter = RedisRateLimiter(connect_redis(DEAD_REDIS), limit=5, window=60, clock=clock)
    assert not limiter.hit("a").counted
    limiter._script = RedisRateLimiter(redis_client, limit=5, window=60)._script  # Redis is back
    assert not limiter.hit("a").counted, "within the retry pause Redis is not asked"
    clock.now += 1.5
    assert limiter.hit(unique_key()).counted


# -- through the API -------------------------------------------------------------------------


def create_endpoint(client) -> str:
    query = {"name": "limited", "language": "python", "type": "endpoint", "project_uuid": "P1"}
    created = client.simulate_post("/code", params=query, body=PYTHON_ACTION)
    assert created.status_code == 201, created.text
    return created.json["id"]


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_action_endpoint_answers_429_over_the_limit(tmp_path, backend, request):
    redis_setting = request.getfixturevalue("redis_url") if backend == "redis" else ""
    settings = Settings(data_dir=str(tmp_path), code_limiter_max_requests=2, redis=redis_setting)
    with api_client(settings) as (client, _):
        code_id = create_endpoint(client)
        answers = [
            client.simulate_get(f"/action/endpoint/{code_id}", params={"name": "x"})
            for _ in range(3)
        ]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["1", "0", "0"]
        assert answers[0].headers["X-RateLimit-Limit"] == "2"
        refused = answers[2]
        assert refused.headers["Retry-After"] == refused.headers["X-RateLimit-Reset"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.json["message"].startswith(
            f"code {code_id} is limited to 2 requests per 60 s"
        )
        runs = client.simulate_get("/coderun", params={"code_id": code_id}).json
        assert len(runs) == 2, "a refused request runs nothing"
        assert (
            client.simulate_get(f"/endpoint/{code_id}", params={"name": "x"}).status_code == 429
        )  # one counter


def test_redis_down_never_answers_500(tmp_path):
    settings = Settings(data_dir=str(tmp_path), code_limiter_max_requests=1, redis=DEAD_REDIS)
    with api_client(settings) as (client, _):
        code_id = create_endpoint(client)
        answers = [client.simulate_get(f"/action/endpoint/{code_id}") for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert "X-RateLimit-Limit" not in answers[0].headers
        metrics = client.simulate_get("/metrics").text
        assert "ca_rate_limiter_errors_total 3.0" in metrics
    closed = settings.replace(rate_limit_fail_open=False)
    with api_client(closed) as (client, _):
        answer = client.simulate_get(f"/action/endpoint/{code_id}")
        assert answer.status_code == 503 and "cannot reach Redis" in answer.json["message"]


@pytest.mark.e2e
@pytest.mark.postgres
def test_two_servers_share_one_limit(new_postgres_database, redis_url, tmp_path):
    settings = {
        "FLOWS_CODE_ACTIONS_DB_TYPE": "postgres",
        "FLOWS_CODE_ACTIONS_DB_URI": new_postgres_database(),
        "FLOWS_CODE_ACTIONS_REDIS": redis_url,
        "FLOWS_CODE_ACTIONS_CODE_LIMITER_MAX_REQUESTS": "7",
    }
    assert run_cli("migrate", settings=settings).returncode == 0
    servers = [
        start_server(
            {**settings, "FLOWS_CODE_ACTIONS_DATA_DIR": str(tmp_path / f"data{i}")},
            tmp_path,
            workers=2,
        )
        for i in range(2)
    ]
    try:
        query = {"name": "shared", "language": "python", "type": "endpoint", "project_uuid": "P"}
        created = requests.post(
            servers[0].url("/code"), params=query, data=PYTHON_ACTION, timeout=10
        )
        code_id = created.json()["id"]
        statuses = [
            requests.get(servers[i % 2].url(f"/action/endpoint/{code_id}"), timeout=30).status_code
            for i in range(12)
        ]
        assert statuses == [200] * 7 + [429] * 5
        remaining = redis.Redis.from_url(redis_url).get(KEY_PREFIX + code_id)
        assert int(remaining) == 12
    finally:
        for server in servers:
            server.stop()
