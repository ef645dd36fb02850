"""A real Redis behind the proxy: PING works, `down` makes the client fail, `up` recovers."""

from __future__ import annotations

import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness.servers.base import MissingServerError, which
from tests.support import wait_for


def redis_client(port: int, timeout: float, password: str) -> redis.Redis:
    # No client-side retries: the test wants to see the failure the proxy causes.
    return redis.Redis(port=port, password=password, socket_timeout=timeout, socket_connect_timeout=timeout,
                       retry=Retry(NoBackoff(), 0))


@pytest.fixture(scope="module")
def redis_srv(request: pytest.FixtureRequest):
    """The session's Redis (the tests only read and write through the proxy, they never
    stop the server, so it needs no private one); skipped where Redis is not installed."""
    try:
        which("redis-server", "redis-server")
    except MissingServerError as exc:
        pytest.skip(str(exc))
    return request.getfixturevalue("redis_server")


def test_redis_through_the_proxy_goes_down_and_recovers(api, redis_srv):
    proxy = api.create_proxy("redis-r1", upstream=f"127.0.0.1:{redis_srv.port}")
    client = redis_client(proxy.listen_port, 1.0, redis_srv.password)
    try:
        assert client.ping() is True
        client.set("gauntlet:key", "value")
        assert client.get("gauntlet:key") == b"value"

        api.disable(proxy.name)
        with pytest.raises(redis.ConnectionError):
            client.ping()
        with pytest.raises(redis.ConnectionError):
            client.ping()  # new connections are refused too

        api.enable(proxy.name)
        wait_for(lambda: _pings(client), 5, "PING through the re-enabled proxy")
        assert client.get("gauntlet:key") == b"value"
    finally:
        client.close()


def test_redis_latency_and_timeout_toxics(api, redis_srv):
    proxy = api.create_proxy("redis-r2", upstream=f"127.0.0.1:{redis_srv.port}")
    client = redis_client(proxy.listen_port, 0.5, redis_srv.password)
    try:
        api.add_toxic(proxy.name, "latency", {"latency": 150})
        started = time.monotonic()
        assert client.ping()
        assert time.monotonic() - started >= 0.15
        api.remove_toxic(proxy.name, "latency_downstream")
        api.add_toxic(proxy.name, "timeout", {"timeout": 0})  # a partition: nothing gets through
        with pytest.raises(redis.TimeoutError):
            client.ping()
        api.remove_toxic(proxy.name, "timeout_downstream")
        wait_for(lambda: _pings(client), 5, "PING after the partition heals")
    finally:
        client.close()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
