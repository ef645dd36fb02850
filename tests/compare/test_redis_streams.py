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
import signal
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
from sut_support import SutProcess, TcpGate, apublish, subscribe

from harness.process import KillPolicy

pytestmark = pytest.mark.integration

BROKER = "redis-streams"


@dataclass
class Published:
    acked: dict[str, float] = field(default_factory=dict)  # key -> acknowledgement time
    failed: int = 0

    def between(self, start: float, end: float) -> set[str]:
        return {k for k, t in self.acked.items() if start <= t <= end}


async def keep_publishing(replica: SutProcess, stop: asyncio.Event, log: Published, prefix: str = "m") -> None:
    seq = 0
    while not stop.is_set():
        key = f"{prefix}{seq}"
        seq += 1
        status, _ = await apublish(replica.url, "u1", {"key": key, "sent_ts": time.time()}, timeout=5)
        if status == 201:
            log.acked[key] = time.time()
        else:
            log.failed += 1
        await asyncio.sleep(0.02)


async def burst(replica: SutProcess, keys: list[str], log: Published, parallel: int = 20) -> None:
    for i in range(0, len(keys), parallel):
        results = await asyncio.gather(*(apublish(replica.url, "u1", {"key": k}) for k in keys[i:i + parallel]))
        for key, (status, _) in zip(keys[i:i + parallel], results):
            if status == 201:
                log.acked[key] = time.time()
            else:
                log.failed += 1


def crash_and_restart(redis_server) -> None:
    redis_server.proc.stop(KillPolicy(signal.SIGKILL, 2.0))
    redis_server.start(time.monotonic() + 10)


@dataclass
class Outage:
    log: Published
    received: list[str]
    cut_off: set[str]  # acknowledged while r1 could not read the stream
    before: dict
    after: dict


async def outage(sut_factory, db_url: str, redis_server, *, defects: str = "", restart_redis: bool = False,
                 maxlen: int | None = None, burst_size: int = 0, settle: float = 10.0) -> Outage:
    """r1 (the subscriber's replica) reaches Redis through a gate; r2 publishes directly.

    The gate is cut for a while (Redis optionally crashed and restarted meanwhile), r2
    keeps publishing (and sends a burst, if asked), then the gate is restored."""
    extra = ("--stream-maxlen", str(maxlen)) if maxlen else ()
    gate = await TcpGate(redis_server.port).start()
    try:
        r1 = await asyncio.to_thread(sut_factory.start, "r1", broker=BROKER, database_url=db_url,
                                     redis_url=f"redis://127.0.0.1:{gate.port}/0", defects=defects, extra_args=extra)
        r2 = await asyncio.to_thread(sut_factory.start, "r2", broker=BROKER, database_url=db_url,
                                     redis_url=redis_server.url, extra_args=extra)
        sub = await subscribe(r1, "u1")
        stop, log = asyncio.Event(), Published()
        publisher = asyncio.create_task(keep_publishing(r2, stop, log))
        await asyncio.sleep(0.7)
        before = await asyncio.to_thread(r1.metrics)
        cut_at = time.time()
        gate.cut()
        if restart_redis:
            await asyncio.to_thread(crash_and_restart, redis_server)
        if burst_size:
            await burst(r2, [f"b{i}" for i in range(burst_size)], log)
        await asyncio.sleep(1.5)
        assert not (await asyncio.to_thread(r1.metrics))["broker"]["connected"], "r1 must be cut off"
        restored_at = time.time()
        gate.restore()
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.wait_for(publisher, 10)
        expected = set(log.acked)
        try:
            await sub.wait_for(lambda s: expected <= set(s.keys()), settle, "every acknowledged message")
        except AssertionError:
            pass  # the caller decides whether a loss is the expected outcome
        await asyncio.sleep(0.5)  # room for late duplicates
        await sub.close()
        after = await asyncio.to_thread(r1.metrics)
        return Outage(log, sub.keys(), log.between(cut_at, restored_at), before, after)
    finally:
        await gate.stop()


def assert_exactly_once(result: Outage) -> None:
    counts = Counter(result.received)
    lost = set(result.log.acked) - set(counts)
    assert not lost, f"{len(lost)} acknowledged messages lost: {sorted(lost)[:10]}"
    duplicated = sorted(k for k, n in counts.items() if n > 1)
    assert not duplicated, f"duplicates: {duplicated[:10]}"
    assert set(counts) <= set(result.log.acked), "only published keys arrive"


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
    result = await outage(sut_factory, fresh_db, own_redis, defects=defects, restart_redis=True)
    assert len(result.cut_off) >= 20, f"only {len(result.cut_off)} messages published while r1 was cut off"
    assert_exactly_once(result)
    broker = result.after["broker"]
    assert broker["reconnects"] >= 1 and broker["resumes"] >= 1 and broker["gaps"] == 0
    # Everything r1 missed came from the stream: the catch-up from Postgres never ran.
    assert broker["catchups"] == result.before["broker"]["catchups"]
    assert broker["catchup_messages"] == result.before["broker"]["catchup_messages"]
    assert broker["received"] >= len(result.cut_off)


async def test_trimmed_past_position_is_a_gap_that_the_catch_up_fills(sut_factory, fresh_db, own_redis):
    result = await outage(sut_factory, fresh_db, own_redis, maxlen=100, burst_size=400)
    assert_exactly_once(result)
    broker = result.after["broker"]
    assert broker["gaps"] >= 1, "400 entries on a stream of ~100 must trim past r1's position"
    assert broker["catchup_messages"] > result.before["broker"]["catchup_messages"]


async def test_the_same_gap_without_catch_up_loses_messages(sut_factory, fresh_db, own_redis):
    result = await outage(sut_factory, fresh_db, own_redis, maxlen=100, burst_size=400, defects="no-catchup",
                          settle=2.5)
    lost = set(result.log.acked) - set(result.received)
    assert len(lost) >= 100, f"a trimmed stream without catch-up must lose messages; lost {len(lost)}"
    assert result.after["broker"]["gaps"] >= 1
