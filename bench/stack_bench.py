"""Stack bring-up/teardown time and publish-to-deliver latency per broker.

Run: .venv/bin/python bench/stack_bench.py [--rounds 3] [--rate 100] [--seconds 10]

1. Bring-up to all-ready and teardown of the full stack (3 reference-SUT replicas,
   Postgres, Redis, fault proxy with 6 proxies, nginx), median of rounds. Baseline in
   the same run: Postgres alone (initdb + start), the step nothing can skip.
   Targets: up <= 5 s, down <= 2 s on a 2-core machine.
2. Publish-to-deliver latency through the whole stack (HTTP publish through nginx →
   replica → Postgres → broker → every replica → WebSocket), at a fixed open-model
   rate, subscribers on every replica. Baseline in the same run: the raw broker alone
   (Redis PUBLISH→SUBSCRIBE, Postgres NOTIFY→LISTEN) at the same rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
import websockets  # noqa: E402

from harness.ports import free_port  # noqa: E402
from harness.servers.postgres import PostgresServer  # noqa: E402
from harness.spec import StackSpec  # noqa: E402
from harness.stack import LocalStack  # noqa: E402
from harness.tokens import user_token  # noqa: E402


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def bench_bringup(rounds: int, runs_dir: Path) -> dict:
    ups, downs, pg_alone = [], [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            root.chmod(0o711)
            t0 = time.monotonic()
            pg = PostgresServer(root / "pg", free_port(), root / "pg.log")
            pg.start(time.monotonic() + 30)
            pg_alone.append(time.monotonic() - t0)
            pg.stop()
        stack = LocalStack(StackSpec(replicas=3, broker="redis", runs_dir=runs_dir))
        t0 = time.monotonic()
        stack.up()
        ups.append(time.monotonic() - t0)
        t0 = time.monotonic()
        stack.down()
        downs.append(time.monotonic() - t0)
    up, down, base = statistics.median(ups), statistics.median(downs), statistics.median(pg_alone)
    return {"up_s": up, "down_s": down, "postgres_alone_s": base, "up_vs_postgres_alone": up / base,
            "rounds": rounds}


async def stack_latency(stack: LocalStack, rate: float, seconds: float) -> dict:
    state = stack.state()
    latencies: dict[str, list[float]] = {"same": [], "cross": []}
    acks: list[float] = []
    subscribers = []
    for replica in state.replicas:
        for k in range(2):
            user = f"bench-{replica.name}-{k}"
            url = replica.url.replace("http://", "ws://") + f"/ws?token={user_token(state.secret, user)}"
            ws = await websockets.connect(url, max_size=None)
            json.loads(await ws.recv())
            subscribers.append((user, replica.name, ws))

    async def listen(instance: str, ws) -> None:
        async for raw in ws:
            now = time.time()
            frame = json.loads(raw)
            if frame.get("type") == "notification":
                path = "same" if frame.get("origin") == instance else "cross"
                latencies[path].append((now - frame["data"]["sent_ts"]) * 1000)

    listeners = [asyncio.create_task(listen(inst, ws)) for _, inst, ws in subscribers]
    headers = {"Authorization": f"Bearer {state.publisher_key}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async def publish(i: int) -> None:
            user = subscribers[i % len(subscribers)][0]
            sent = time.time()
            async with http.post(f"{state.lb_url}/api/notifications",
                                 json={"user": user, "data": {"key": i, "sent_ts": sent}}) as resp:
                await resp.read()
                if resp.status == 201:
                    acks.append((time.time() - sent) * 1000)

        start = time.monotonic()
        tasks = []
        total = int(rate * seconds)
        for i in range(total):
            # Open model: each send at its scheduled time, whatever the previous did.
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(publish(i)))
        await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(1.0)
    for task in listeners:
        task.cancel()
    for _, _, ws in subscribers:
        await ws.close()
    delivered = latencies["same"] + latencies["cross"]
    return {
        "published": total, "acked": len(acks), "delivered": len(delivered),
        "deliver_p50_ms": pct(delivered, 50), "deliver_p99_ms": pct(delivered, 99),
        "cross_p50_ms": pct(latencies["cross"], 50), "cross_p99_ms": pct(latencies["cross"], 99),
        "publish_p50_ms": pct(acks, 50), "publish_p99_ms": pct(acks, 99),
    }


async def raw_redis_latency(url: str, rate: float, seconds: float) -> list[float]:
    sub_client, pub_client = aioredis.from_url(url), aioredis.from_url(url)
    pubsub = sub_client.pubsub()
    await pubsub.subscribe("bench")
    await pubsub.get_message(timeout=1)
    out: list[float] = []

    async def listen() -> None:
        while True:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if msg:
                out.append((time.time() - float(msg["data"])) * 1000)

    task = asyncio.create_task(listen())
    start = time.monotonic()
    for i in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        await pub_client.publish("bench", repr(time.time()))
    await asyncio.sleep(0.5)
    task.cancel()
    await pubsub.aclose()
    await sub_client.aclose()
    await pub_client.aclose()
    return out


async def raw_postgres_latency(url: str, rate: float, seconds: float) -> list[float]:
    listener, notifier = await asyncpg.connect(url), await asyncpg.connect(url)
    out: list[float] = []
    await listener.add_listener("bench", lambda *a: out.append((time.time() - float(a[3])) * 1000))
    start = time.monotonic()
    for i in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        await notifier.execute("SELECT pg_notify('bench', $1)", repr(time.time()))
    await asyncio.sleep(0.5)
    await listener.close()
    await notifier.close()
    return out


def bench_latency(broker: str, rate: float, seconds: float, runs_dir: Path) -> dict:
    with LocalStack(StackSpec(replicas=3, broker=broker, runs_dir=runs_dir)) as stack:
        result = asyncio.run(stack_latency(stack, rate, seconds))
        if broker == "redis":
            raw = asyncio.run(raw_redis_latency(stack.redis.url, rate, seconds))
        elif broker == "postgres":
            raw = asyncio.run(raw_postgres_latency(stack.postgres.url, rate, seconds))
        else:
            raw = []
    result["raw_broker_p50_ms"] = pct(raw, 50)
    result["raw_broker_p99_ms"] = pct(raw, 99)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=100.0, help="publishes per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as runs:
        runs_dir = Path(runs)
        up = bench_bringup(args.rounds, runs_dir)
        print(f"bring-up (3 replicas + postgres + redis + fault proxy + nginx), median of {up['rounds']}:")
        print(f"  up   {up['up_s']:.2f} s   (target <= 5 s; postgres alone {up['postgres_alone_s']:.2f} s, "
              f"ratio {up['up_vs_postgres_alone']:.1f}x)")
        print(f"  down {up['down_s']:.2f} s   (target <= 2 s)")
        print(f"\npublish-to-deliver latency at {args.rate:.0f} msg/s for {args.seconds:.0f} s, 6 subscribers on 3 replicas:")
        print(f"  {'broker':<9} {'delivered':>9} {'p50 ms':>8} {'p99 ms':>8} {'cross p99':>10} {'publish p99':>12} "
              f"{'raw p50':>8} {'raw p99':>8} {'p50 ratio':>10}")
        for broker in ("redis", "postgres"):
            r = bench_latency(broker, args.rate, args.seconds, runs_dir)
            ratio = r["deliver_p50_ms"] / r["raw_broker_p50_ms"] if r["raw_broker_p50_ms"] else float("nan")
            print(f"  {broker:<9} {r['delivered']:>4}/{r['published']:<4} {r['deliver_p50_ms']:>8.2f} "
                  f"{r['deliver_p99_ms']:>8.2f} {r['cross_p99_ms']:>10.2f} {r['publish_p99_ms']:>12.2f} "
                  f"{r['raw_broker_p50_ms']:>8.2f} {r['raw_broker_p99_ms']:>8.2f} {ratio:>9.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
