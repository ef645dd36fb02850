"""Cross-instance delivery between separate replica processes: every broker that
claims fan-out delivers each notification exactly once to every addressed socket on
every replica; the memory broker (the negative control) must lose cross-instance
traffic; a payload beyond Postgres's 8000-byte NOTIFY limit still arrives."""

from __future__ import annotations

import asyncio

import pytest
from sut_support import apublish, subscribe

pytestmark = pytest.mark.integration

REPLICAS = ["r1", "r2", "r3"]


async def publish_round_robin(replicas, count):
    """Publish `count` notifications for u1 and one broadcast, spread over the replicas."""
    sent = {}
    for i in range(count):
        source = replicas[i % len(replicas)]
        status, body = await apublish(source.url, "u1", {"key": f"k{i}", "sent_ts": float(i)})
        assert status == 201, body
        assert body["instance"] == source.instance
        sent[f"k{i}"] = (body["id"], source.instance)
    status, body = await apublish(replicas[1].url, None, {"key": "all"})
    assert status == 201
    sent["all"] = (body["id"], replicas[1].instance)
    return sent


@pytest.mark.parametrize("broker", ["postgres", "redis"])
async def test_every_replica_delivers_everything_exactly_once(sut_factory, fresh_db, redis_server, broker):
    replicas = await asyncio.to_thread(sut_factory.start_many, REPLICAS, broker=broker,
                                       database_url=fresh_db, redis_url=redis_server.url)
    subs = {r.instance: await subscribe(r, "u1") for r in replicas}
    other = await subscribe(replicas[2], "u2")
    sent = await publish_round_robin(replicas, 12)

    for instance, sub in subs.items():
        await sub.wait_for(lambda s: len(s.notifications) >= len(sent), 10, f"all frames on {instance}")
    await asyncio.sleep(0.3)  # room for a duplicate to show up
    for instance, sub in subs.items():
        got = {f["data"]["key"]: (f["id"], f["origin"]) for f in sub.notifications}
        assert got == sent, f"subscriber on {instance}"
        assert len(sub.notifications) == len(sent), f"duplicates on {instance}"
    assert [f["data"]["key"] for f in other.notifications] == ["all"]
    for replica in replicas:
        metrics = replica.metrics()
        assert metrics["broker"]["kind"] == broker and metrics["broker"]["connected"]
        extra = 1 if replica.instance == "r3" else 0  # the broadcast also went to u2 there
        assert metrics["delivered"] == len(sent) + extra
    for sub in [*subs.values(), other]:
        await sub.close()


async def test_memory_broker_loses_cross_instance_delivery(sut_factory, fresh_db):
    replicas = await asyncio.to_thread(sut_factory.start_many, REPLICAS, broker="memory", database_url=fresh_db)
    subs = {r.instance: await subscribe(r, "u1") for r in replicas}
    sent = await publish_round_robin(replicas, 12)
    await asyncio.sleep(1.0)
    for instance, sub in subs.items():
        origins = {f["origin"] for f in sub.notifications}
        expected_local = {k for k, (_, origin) in sent.items() if origin == instance}
        assert {f["data"]["key"] for f in sub.notifications} == expected_local
        assert origins <= {instance}, f"{instance} saw notifications from other replicas"
        lost = len(sent) - len(expected_local)
        assert lost >= 4, f"{instance} should have lost the other replicas' notifications"
    for sub in subs.values():
        await sub.close()


async def test_payload_over_the_notify_limit_crosses_replicas(sut_factory, fresh_db):
    r1, r2 = await asyncio.to_thread(sut_factory.start_many, ["r1", "r2"], broker="postgres", database_url=fresh_db)
    sub = await subscribe(r1, "big")
    data = {"key": "huge", "blob": "é" * 10_000, "sent_ts": 1.0}  # 20 kB of UTF-8
    status, body = await apublish(r2.url, "big", data)
    assert status == 201
    small = await apublish(r2.url, "big", {"key": "small"})
    await sub.wait_for(lambda s: len(s.notifications) == 2, 10, "both notifications")
    frames = {f["data"]["key"]: f for f in sub.notifications}
    assert frames["huge"]["data"] == data and frames["huge"]["id"] == body["id"] and frames["huge"]["origin"] == "r2"
    assert frames["small"]["id"] == small[1]["id"]
    assert r2.metrics()["broker"]["refs_sent"] == 1
    await sub.close()
