"""The full broker comparison on this machine, and the raw brokers at 8 KB.

Run: .venv/bin/python bench/compare_bench.py [--repeat 1] [--seed 7] [--rate-budget 15m] [--skip-compare]

1. `gauntlet compare --brokers postgres,redis,redis-streams scenarios/ramp.py
   --chaos chaos/timelines/redis-outage.toml --max-rate-search`: the ramp scenario
   (100 then 500 users, 3 replicas) with Redis unreachable for 15 s, against each
   broker, then the fan-out rate search (broadcasts to 40 subscribers, rate doubled
   then bisected until delivery p99 >= 250 ms or anything is lost). Prints the table
   and the recommendation; the report is in runs/<stamp>-compare-ramp/compare.html.
2. The raw brokers with an 8 KB payload (the size our users' LISTEN/NOTIFY guide
   plans for; Postgres refuses 8000 bytes and more, so 7,900 bytes there): one
   publisher, one subscriber, no SUT. Latency at a fixed open-model rate, and the
   rate a closed loop of 4 publishers reaches in 3 s. This is the number the guides'
   claims ("1-10 ms", "thousands of messages/second") are about; section 1 is what a
   replica set adds on top.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402
import numpy as np  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402

from harness.commands.compare import build_job, build_parser  # noqa: E402
from harness.compare import execute_comparison, summary_lines  # noqa: E402
from harness.ports import free_port  # noqa: E402
from harness.servers.postgres import PostgresServer  # noqa: E402
from harness.servers.redis import RedisServer  # noqa: E402

PG_PAYLOAD = 7_900  # bytes; NOTIFY refuses 8000 and more
REDIS_PAYLOAD = 8_192


def payload(size: int) -> str:
    """A timestamp padded to `size` bytes: the receiver reads the send time back."""
    stamp = repr(time.time())
    return stamp + " " + "x" * (size - len(stamp) - 1)


def sent_at(text: str | bytes) -> float:
    raw = text.decode() if isinstance(text, bytes) else text
    return float(raw.split(" ", 1)[0])


async def paced(send, rate: float, seconds: float) -> None:
    start = time.monotonic()
    for i in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        await send()


async def postgres_probe(url: str, rate: float, seconds: float) -> dict:
    listener = await asyncpg.connect(url)
    latencies: list[float] = []
    await listener.add_listener("bench", lambda *a: latencies.append((time.time() - sent_at(a[3])) * 1000))
    notifier = await asyncpg.connect(url)
    await paced(lambda: notifier.execute("SELECT pg_notify('bench', $1)", payload(PG_PAYLOAD)), rate, seconds)
    await asyncio.sleep(0.5)
    paced_latencies = list(latencies)
    latencies.clear()
    senders = [await asyncpg.connect(url) for _ in range(4)]
    stop = time.monotonic() + 3.0

    async def loop(conn) -> None:
        while time.monotonic() < stop:
            await conn.execute("SELECT pg_notify('bench', $1)", payload(PG_PAYLOAD))

    await asyncio.gather(*(loop(c) for c in senders))
    await asyncio.sleep(1.0)
    received = len(latencies)
    for conn in (listener, notifier, *senders):
        await conn.close()
    return summary("postgres NOTIFY/LISTEN", PG_PAYLOAD, rate, paced_latencies, received / 3.0)


async def redis_probe(url: str, rate: float, seconds: float, streams: bool) -> dict:
    reader, writer = aioredis.Redis.from_url(url), aioredis.Redis.from_url(url)
    latencies: list[float] = []
    done = asyncio.Event()
    if streams:
        await writer.delete("bench")

        async def consume() -> None:
            position = "0-0"
            while not done.is_set():
                reply = await reader.xread({"bench": position}, count=1000, block=200)
                for _, entries in reply or []:
                    for entry_id, fields in entries:
                        position = entry_id
                        latencies.append((time.time() - sent_at(fields[b"n"])) * 1000)

        async def send() -> None:
            await writer.xadd("bench", {"n": payload(REDIS_PAYLOAD)}, maxlen=50_000, approximate=True)
    else:
        pubsub = reader.pubsub()
        await pubsub.subscribe("bench")

        async def consume() -> None:
            while not done.is_set():
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                if message:
                    latencies.append((time.time() - sent_at(message["data"])) * 1000)

        async def send() -> None:
            await writer.publish("bench", payload(REDIS_PAYLOAD))

    consumer = asyncio.create_task(consume())
    await paced(send, rate, seconds)
    await asyncio.sleep(0.5)
    paced_latencies = list(latencies)
    latencies.clear()
    senders = [aioredis.Redis.from_url(url) for _ in range(4)]
    stop = time.monotonic() + 3.0

    async def loop(client) -> None:
        while time.monotonic() < stop:
            if streams:
                await client.xadd("bench", {"n": payload(REDIS_PAYLOAD)}, maxlen=50_000, approximate=True)
            else:
                await client.publish("bench", payload(REDIS_PAYLOAD))

    await asyncio.gather(*(loop(c) for c in senders))
    await asyncio.sleep(1.0)
    received = len(latencies)
    done.set()
    await asyncio.wait_for(consumer, 5)
    for client in (reader, writer, *senders):
        await client.aclose()
    name = "redis XADD/XREAD" if streams else "redis PUBLISH/SUBSCRIBE"
    return summary(name, REDIS_PAYLOAD, rate, paced_latencies, received / 3.0)


def summary(name: str, size: int, rate: float, latencies: list[float], closed_rate: float) -> dict:
    v = np.asarray(latencies)
    p50, p99 = (np.percentile(v, [50, 99]) if len(v) else (float("nan"), float("nan")))
    return {"name": name, "bytes": size, "rate": rate, "received": len(v), "p50": p50, "p99": p99,
            "closed_rate": closed_rate}


def raw_brokers(rate: float, seconds: float) -> list[dict]:
    root = Path(tempfile.mkdtemp(prefix="compare-bench-"))
    root.chmod(0o711)  # the postgres account must reach its own subdirectory
    pg = PostgresServer(root / "pg", free_port(), root / "pg.log")
    rd = RedisServer(root / "redis", free_port(), root / "redis.log")
    try:
        pg.start(time.monotonic() + 30)
        rd.start(time.monotonic() + 10)
        return [asyncio.run(postgres_probe(pg.url, rate, seconds)),
                asyncio.run(redis_probe(rd.url, rate, seconds, streams=False)),
                asyncio.run(redis_probe(rd.url, rate, seconds, streams=True))]
    finally:
        rd.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--brokers", default="postgres,redis,redis-streams")
    parser.add_argument("--scenario", default="scenarios/ramp.py")
    parser.add_argument("--chaos", default="chaos/timelines/redis-outage.toml")
    parser.add_argument("--repeat", default="1")
    parser.add_argument("--seed", default="7")
    parser.add_argument("--rate-budget", default="15m")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--raw-rate", type=float, default=1000.0, help="raw broker probe: messages/s (1000)")
    parser.add_argument("--skip-compare", action="store_true", help="only the raw broker probe")
    args = parser.parse_args()

    print(f"raw brokers, one publisher and one subscriber, {args.raw_rate:g} msg/s for 5 s, then 4 publishers "
          f"flat out for 3 s:")
    print(f"  {'':<26} {'bytes':>6} {'received':>9} {'p50 ms':>8} {'p99 ms':>8} {'flat-out msg/s':>15}")
    for r in raw_brokers(args.raw_rate, 5.0):
        print(f"  {r['name']:<26} {r['bytes']:>6,} {r['received']:>9,} {r['p50']:>8.2f} {r['p99']:>8.2f} "
              f"{r['closed_rate']:>15,.0f}", flush=True)
    if args.skip_compare:
        return 0

    argv = ["--brokers", args.brokers, args.scenario, "--chaos", args.chaos, "--repeat", args.repeat,
            "--seed", args.seed, "--max-rate-search", "--rate-budget", args.rate_budget,
            "--runs-dir", args.runs_dir, "--quiet"]
    job = build_job(build_parser().parse_args(argv), ["gauntlet", "compare", *argv])
    started = time.monotonic()
    # The runs' own output goes to a log: this bench prints the comparison.
    log = Path(args.runs_dir) / "compare-bench.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as out, contextlib.redirect_stdout(out):
        outcome = execute_comparison(job, progress=lambda m: print(m, flush=True), live=False, build_report=False)
    from reports.compare_html import build_compare_report

    comparison, path = build_compare_report(outcome.directory)
    print(f"\ngauntlet compare {' '.join(argv)}\n({(time.monotonic() - started) / 60:.1f} min; run log {log})")
    for line in summary_lines(comparison):
        print(line)
    for b in comparison.brokers:
        if b.rate:
            steps = ", ".join(f"{s.rate:g}{'✓' if s.passed else '✗'}" for s in b.rate.steps)
            print(f"  rate steps {b.broker}: {steps} ({b.rate.stopped})")
    print(f"report: {path}")
    return 0 if not outcome.interrupted else 130


if __name__ == "__main__":
    sys.exit(main())
