"""Dependencies failing under a running stack.

The broker tests cut one replica (the subscriber side) off its broker while another
replica keeps publishing, so messages are certainly published while the subscriber
side cannot hear them; only the catch-up from Postgres can bring them back. The same
scenario with the `no-catchup` defect must lose messages, and with `dup-catchup` must
duplicate them: proof that the exactly-once assertion can fail.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from outage_support import assert_exactly_once, broker_outage
from sut_support import TcpGate, apublish, http, publisher_headers, subscribe

pytestmark = pytest.mark.integration


async def test_redis_restart_loses_nothing_thanks_to_catch_up(sut_factory, fresh_db, own_redis):
    result = await broker_outage(sut_factory, fresh_db, own_redis, "redis", crash_redis=True)
    assert_exactly_once(result)
    assert result.after["broker"]["reconnects"] >= 1
    assert result.after["broker"]["catchup_messages"] > 0


async def test_no_catchup_defect_loses_messages_in_the_same_scenario(sut_factory, fresh_db, own_redis):
    result = await broker_outage(sut_factory, fresh_db, own_redis, "redis", defects="no-catchup",
                                 crash_redis=True, settle=2.5)
    lost = set(result.log.acked) - set(result.received)
    assert len(lost) >= 10, f"expected a loss without catch-up, lost {len(lost)}"
    assert result.after["broker"]["reconnects"] >= 1 and result.after["broker"]["catchup_messages"] == 0


async def test_dup_catchup_defect_duplicates_messages(sut_factory, fresh_db, own_redis):
    result = await broker_outage(sut_factory, fresh_db, own_redis, "redis", defects="dup-catchup", settle=2.5)
    duplicated = [k for k, n in Counter(result.received).items() if n > 1]
    assert len(duplicated) >= 10, f"expected duplicates, got {len(duplicated)}"


async def test_postgres_listener_drop_loses_nothing(sut_factory, fresh_db):
    result = await broker_outage(sut_factory, fresh_db, None, "postgres")
    assert_exactly_once(result)
    assert result.after["broker"]["catchup_messages"] > 0


async def test_no_broker_reconnect_defect_stays_down(sut_factory, fresh_db, own_redis):
    gate = await TcpGate(own_redis.port).start()
    try:
        r1 = await asyncio.to_thread(sut_factory.start, "r1", broker="redis", database_url=fresh_db,
                                     redis_url=own_redis.url_via(f"127.0.0.1:{gate.port}"), defects="no-broker-reconnect")
        gate.cut()
        await asyncio.sleep(0.5)
        gate.restore()
        await asyncio.sleep(2.0)
        status, _, body = await asyncio.to_thread(http, r1.url + "/api/ready")
        assert status == 503 and body["failed"] == ["broker"]
        metrics = await asyncio.to_thread(r1.metrics)
        assert metrics["broker"]["connected"] is False and metrics["broker"]["reconnects"] == 0
    finally:
        await gate.stop()


async def test_drop_fanout_defect_loses_about_one_percent(sut_factory, fresh_db, redis_server):
    r1, r2 = await asyncio.to_thread(sut_factory.start_many, ["r1", "r2"], broker="redis", database_url=fresh_db,
                                     redis_url=redis_server.url, defects="drop-fanout-1pct")
    sub = await subscribe(r1, "u1")
    keys = [f"k{i}" for i in range(600)]
    for chunk in range(0, len(keys), 50):
        results = await asyncio.gather(*(apublish(r2.url, "u1", {"key": k}) for k in keys[chunk:chunk + 50]))
        assert all(status == 201 for status, _ in results)
    await asyncio.sleep(1.5)
    lost = set(keys) - set(sub.keys())
    dropped = (await asyncio.to_thread(r1.metrics))["broker"]["dropped_by_defect"]
    assert 1 <= len(lost) <= 20 and len(lost) == dropped
    await sub.close()


async def test_postgres_down_fails_fast_then_recovers(sut_factory, own_postgres):
    r1, r2 = await asyncio.to_thread(sut_factory.start_many, ["r1", "r2"], broker="postgres",
                                     database_url=own_postgres.url)
    sub = await subscribe(r1, "u1")
    assert (await apublish(r2.url, "u1", {"key": "before"}))[0] == 201
    await sub.wait_for(lambda s: "before" in s.keys(), 5, "the first message")

    await asyncio.to_thread(own_postgres.stop)
    for _ in range(3):
        started = time.monotonic()
        status, headers, body = await asyncio.to_thread(
            http, r2.url + "/api/notifications", "POST", {"user": "u1", "data": {"key": "during"}},
            headers=publisher_headers(), timeout=10)
        elapsed = time.monotonic() - started
        assert status == 503 and "database" in body["error"], body
        assert elapsed < 3.0, f"publish took {elapsed:.2f}s to fail"
    started = time.monotonic()
    status, _, body = await asyncio.to_thread(http, r2.url + "/api/ready", timeout=10)
    assert status == 503 and "database" in body["failed"] and "broker" in body["failed"]
    assert time.monotonic() - started < 2.5
    assert (await asyncio.to_thread(http, r2.url + "/api/health"))[0] == 200
    assert r1.alive() and r2.alive()

    await asyncio.to_thread(own_postgres.start, time.monotonic() + 30)
    await asyncio.to_thread(r1.wait_ready, 20)
    await asyncio.to_thread(r2.wait_ready, 20)
    status, body = await apublish(r2.url, "u1", {"key": "after"})
    assert status == 201
    await sub.wait_for(lambda s: "after" in s.keys(), 10, "a message after recovery")
    assert sub.keys() == ["before", "after"]
    metrics = await asyncio.to_thread(r2.metrics)
    assert metrics["db"]["connected"] and metrics["db"]["reconnects"] >= 1
    await sub.close()
