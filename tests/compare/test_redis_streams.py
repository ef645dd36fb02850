"""The Redis Streams broker on real servers: replica processes, a real Redis, Postgres.

Cross-instance delivery over three replicas; then the subscriber side (r1) cut off
from Redis while r2 keeps publishing, with and without a Redis crash in between. The
stream is durable, so r1 resumes from its last entry and loses nothing *without* the
catch-up from Postgres: the same outage with the `no-catchup` defect still loses
nothing, and the replica's catch-up counter does not move. When the stream is trimmed
past r1's position (a tiny MAXLEN and a burst), the broker reports a gap and the
catch-up takes over; with `no-catchup` that same gap loses messages, which proves the
gap path is what saves them.
"""

from __future__ import annotations

import asyncio

import pytest
from outage_support import assert_exactly_once, broker_outage
from sut_support import apublish, subscribe

pytestmark = pytest.mark.integration

BROKER = "redis-streams"


async def test_every_replica_delivers_everything_exactly_once(sut_factory, fresh_db, own_redis):
    replicas = await asyncio.to_thread(sut_factory.start_many, ["r1", "r2", "r3"], broker=BROKER,
                                       database_url=fresh_db, redis_url=own_redis.url)
    subs = {r.instance: await subscribe(r, "u1") for r in replicas}
    other = await subscribe(replicas[2], "u2")
    sent = {}
    for i in range(12):
        source = replicas[i % 3]
        status, body = await apublish(source.url, "u1", {"key": f"k{i}"})
        assert status == 201 and body["instance"] == source.instance
        sent[f"k{i}"] = (body["id"], source.instance)
    status, body = await apublish(replicas[1].url, None, {"key": "all"})
    assert status == 201
    sent["all"] = (body["id"], "r2")
    for instance, sub in subs.items():
        await sub.wait_for(lambda s: len(s.notifications) >= len(sent), 10, f"all frames on {instance}")
    await asyncio.sleep(0.3)  # room for a duplicate to show up
    for instance, sub in subs.items():
        assert {f["data"]["key"]: (f["id"], f["origin"]) for f in sub.notifications} == sent, instance
        assert len(sub.notifications) == len(sent), f"duplicates on {instance}"
    assert [f["data"]["key"] for f in other.notifications] == ["all"]
    for replica in replicas:
        broker = replica.metrics()["broker"]
        assert broker["kind"] == BROKER and broker["connected"]
        # Each replica read every entry from the stream (its own ones come back as echoes).
        assert broker["received"] == len(sent) and broker["gaps"] == 0
    for sub in [*subs.values(), other]:
        await sub.close()


@pytest.mark.parametrize("defects", ["", "no-catchup"])
async def test_connection_drop_and_redis_crash_lose_nothing_without_the_catch_up(sut_factory, fresh_db, own_redis,
                                                                                defects):
    result = await broker_outage(sut_factory, fresh_db, own_redis, BROKER, defects=defects, crash_redis=True)
    assert len(result.cut_off) >= 20, f"only {len(result.cut_off)} messages published while r1 was cut off"
    assert_exactly_once(result)
    broker = result.after["broker"]
    assert broker["reconnects"] >= 1 and broker["resumes"] >= 1 and broker["gaps"] == 0
    # Everything r1 missed came from the stream: the catch-up from Postgres never ran.
    assert broker["catchups"] == result.before["broker"]["catchups"]
    assert broker["catchup_messages"] == result.before["broker"]["catchup_messages"]
    assert broker["received"] >= len(result.cut_off)


async def test_trimmed_past_position_is_a_gap_that_the_catch_up_fills(sut_factory, fresh_db, own_redis):
    result = await broker_outage(sut_factory, fresh_db, own_redis, BROKER, stream_maxlen=100, burst_size=400)
    assert_exactly_once(result)
    broker = result.after["broker"]
    assert broker["gaps"] >= 1, "400 entries on a stream of ~100 must trim past r1's position"
    assert broker["catchup_messages"] > result.before["broker"]["catchup_messages"]


async def test_the_same_gap_without_catch_up_loses_messages(sut_factory, fresh_db, own_redis):
    result = await broker_outage(sut_factory, fresh_db, own_redis, BROKER, stream_maxlen=100, burst_size=400,
                                 defects="no-catchup", settle=2.5)
    lost = set(result.log.acked) - set(result.received)
    assert len(lost) >= 100, f"a trimmed stream without catch-up must lose messages; lost {len(lost)}"
    assert result.after["broker"]["gaps"] >= 1
    # The loss is the defect's: the catch-up that would have filled the gap never ran.
    assert result.after["broker"]["catchup_messages"] == result.before["broker"]["catchup_messages"]
