"""A broker outage on one replica under steady publishing, shared by every broker's tests.

r1 (the subscriber's replica) reaches its broker through a TcpGate; r2 publishes
directly. The gate is cut for a while, so messages are certainly published while r1
cannot hear them, then restored; whatever r1's subscriber gets afterwards shows what
the broker's resume and the catch-up from Postgres brought back.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sut_support import SutProcess, TcpGate, apublish, subscribe

from harness.ports import LOOPBACK
from harness.process import KillPolicy


@dataclass
class PublishLog:
    sent: set[str] = field(default_factory=set)
    acked: dict[str, float] = field(default_factory=dict)  # key -> acknowledgement time
    failed: int = 0  # answered with an error or not at all: the outcome is unknown

    def record(self, key: str, status: int) -> None:
        self.sent.add(key)
        if status == 201:
            self.acked[key] = time.time()
        else:
            self.failed += 1

    def between(self, start: float, end: float) -> set[str]:
        return {k for k, t in self.acked.items() if start <= t <= end}


async def keep_publishing(replica: SutProcess, stop: asyncio.Event, log: PublishLog, interval: float = 0.02) -> None:
    seq = 0
    while not stop.is_set():
        key = f"m{seq}"
        seq += 1
        status, _ = await apublish(replica.url, "u1", {"key": key, "sent_ts": time.time()}, timeout=5)
        log.record(key, status)
        await asyncio.sleep(interval)


async def burst(replica: SutProcess, keys: list[str], log: PublishLog, parallel: int = 20) -> None:
    for i in range(0, len(keys), parallel):
        chunk = keys[i:i + parallel]
        results = await asyncio.gather(*(apublish(replica.url, "u1", {"key": k}) for k in chunk))
        for key, (status, _) in zip(chunk, results):
            log.record(key, status)


def crash_and_restart(redis_server) -> None:
    redis_server.proc.stop(KillPolicy(signal.SIGKILL, 2.0))
    time.sleep(0.5)
    redis_server.start(time.monotonic() + 10)


@dataclass
class Outage:
    log: PublishLog
    received: list[str]
    cut_off: set[str]  # acknowledged while r1 could not hear its broker
    before: dict  # r1's metrics before the cut
    after: dict  # and at the end


def gated_urls(broker: str, db_url: str, gate_port: int, redis_server) -> tuple[str, str | None]:
    """r1's database and Redis URLs (with their credentials), with the gate in front of
    whatever carries its broker."""
    via_gate = f"{LOOPBACK}:{gate_port}"
    if broker == "postgres":
        return db_url.replace(f"@{LOOPBACK}:{urlsplit(db_url).port}/", f"@{via_gate}/", 1), None
    return db_url, redis_server.url_via(via_gate)


def broker_upstream_port(broker: str, db_url: str, redis_server) -> int:
    return urlsplit(db_url).port if broker == "postgres" else redis_server.port


async def broker_outage(sut_factory, db_url: str, redis_server, broker: str, *, defects: str = "",
                        crash_redis: bool = False, stream_maxlen: int | None = None, burst_size: int = 0,
                        settle: float = 10.0) -> Outage:
    """Cut r1 off its broker for ~2.5 s while r2 publishes (Redis optionally crashed and
    restarted meanwhile, a burst optionally sent), restore, and collect what r1 delivered.

    `settle`: how long to wait for every acknowledged message once publishing stops
    (short where a loss is the expected outcome)."""
    extra = ("--stream-maxlen", str(stream_maxlen)) if stream_maxlen else ()
    direct_redis = redis_server.url if redis_server is not None else None
    gate = await TcpGate(broker_upstream_port(broker, db_url, redis_server)).start()
    try:
        r1_db, r1_redis = gated_urls(broker, db_url, gate.port, redis_server)
        r1 = await asyncio.to_thread(sut_factory.start, "r1", broker=broker, database_url=r1_db,
                                     redis_url=r1_redis, defects=defects, extra_args=extra)
        r2 = await asyncio.to_thread(sut_factory.start, "r2", broker=broker, database_url=db_url,
                                     redis_url=direct_redis, extra_args=extra)
        sub = await subscribe(r1, "u1")
        stop, log = asyncio.Event(), PublishLog()
        publisher = asyncio.create_task(keep_publishing(r2, stop, log))
        try:
            await asyncio.sleep(0.7)
            before = await asyncio.to_thread(r1.metrics)
            cut_at = time.time()
            gate.cut()
            if crash_redis:
                await asyncio.to_thread(crash_and_restart, redis_server)
            if burst_size:
                await burst(r2, [f"b{i}" for i in range(burst_size)], log)
            # r1 stays cut off while r2 publishes successfully.
            await asyncio.sleep(1.5)
            assert not (await asyncio.to_thread(r1.metrics))["broker"]["connected"], "r1 must be cut off"
            restored_at = time.time()
            gate.restore()
            await asyncio.sleep(1.0)
        finally:
            stop.set()
            await asyncio.wait_for(publisher, 10)
        assert len(log.acked) > 60, f"only {len(log.acked)} publishes acknowledged"
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
    """Every acknowledged message arrived once; nothing arrived that was not sent, and
    an unacknowledged one only where a publish had an unknown outcome."""
    counts = Counter(result.received)
    lost = set(result.log.acked) - set(counts)
    assert not lost, f"{len(lost)} acknowledged messages lost: {sorted(lost)[:10]}"
    duplicated = sorted(k for k, n in counts.items() if n > 1)
    assert not duplicated, f"duplicates: {duplicated[:10]}"
    assert set(counts) <= result.log.sent, "only published keys arrive"
    unacked = set(counts) - set(result.log.acked)
    assert len(unacked) <= result.log.failed, f"{len(unacked)} unacknowledged keys arrived, {result.log.failed} failed"
