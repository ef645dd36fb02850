"""What the embedded fault proxy costs: the same workloads direct and through it.

    .venv/bin/python bench/proxy_overhead.py [--quick] [--json out.json]

Starts its own throwaway Redis, Postgres and fault proxy (`python -m chaos.proxy`, no
toxics: the fast path every replica's traffic takes between faults), runs each
workload direct and through the proxy in the same run, interleaved, and prints the
ratios. Everything it starts is stopped in a finally.

Workloads:
- Redis round trips, one connection, one at a time: PING and GET with redis-py, and a
  bare RESP PING over a socket (the transport alone, no client library).
- Redis ops/s with 16 concurrent asyncio clients.
- Postgres `SELECT 1` with asyncpg, one connection (p50/p99, q/s) and 8 connections.
- Bulk: 200 MB one way into a sink server (MB/s), with the proxy's CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import asyncpg
import psutil
import redis
import redis.asyncio as aredis
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chaos.toxiproxy_client import ToxiproxyClient  # noqa: E402
from harness.ports import LOOPBACK, free_port  # noqa: E402
from harness.process import ChildProcess, KillPolicy  # noqa: E402
from harness.servers.postgres import DB_NAME, DB_USER, PostgresServer  # noqa: E402
from harness.servers.redis import RedisServer  # noqa: E402

P50_TARGET = 1.5  # through-proxy p50 at most 1.5x direct
THROUGHPUT_TARGET = 0.5  # through-proxy bulk at least 50 % of direct


@dataclass
class Latency:
    p50_us: float
    p99_us: float
    ops_per_s: float


@dataclass
class Row:
    name: str
    unit: str
    direct: float
    proxied: float
    higher_is_better: bool

    @property
    def ratio(self) -> float:
        return self.proxied / self.direct if self.direct else float("nan")


def latency_of(samples_ns: list[int], wall_s: float) -> Latency:
    ordered = sorted(samples_ns)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Latency(statistics.median(ordered) / 1000, p99 / 1000, len(ordered) / wall_s)


def timed(op: Callable[[], object], count: int, warmup: int = 200) -> Latency:
    for _ in range(warmup):
        op()
    samples = []
    started = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter_ns()
        op()
        samples.append(time.perf_counter_ns() - t0)
    return latency_of(samples, time.perf_counter() - started)


# --- Redis ---


# The throwaway servers' generated passwords, set by services().
PASSWORDS = {"redis": "", "postgres": ""}


def redis_client(port: int) -> redis.Redis:
    return redis.Redis(host=LOOPBACK, port=port, password=PASSWORDS["redis"], socket_timeout=5,
                       socket_connect_timeout=5)


def redis_ping(port: int, count: int) -> Latency:
    client = redis_client(port)
    try:
        return timed(client.ping, count)
    finally:
        client.close()


def redis_get(port: int, count: int) -> Latency:
    client = redis_client(port)
    try:
        client.set("bench:key", "x" * 100)
        return timed(lambda: client.get("bench:key"), count)
    finally:
        client.close()


def resp_ping(port: int, count: int) -> Latency:
    """PING as raw RESP on a socket: what the proxy adds to the transport alone."""
    with socket.create_connection((LOOPBACK, port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request, reply = b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n"
        password = PASSWORDS["redis"].encode()
        sock.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(password), password))
        if sock.recv(64) != b"+OK\r\n":
            raise RuntimeError("AUTH refused")

        def ping() -> None:
            sock.sendall(request)
            got = sock.recv(64)
            if got != reply:
                raise RuntimeError(f"unexpected reply {got!r}")

        return timed(ping, count)


def redis_concurrent(port: int, clients: int, per_client: int) -> float:
    async def run() -> float:
        pool = [aredis.Redis(host=LOOPBACK, port=port, password=PASSWORDS["redis"], socket_timeout=5) for _ in range(clients)]
        try:
            await asyncio.gather(*(c.ping() for c in pool))

            async def work(client: aredis.Redis) -> None:
                for _ in range(per_client):
                    await client.get("bench:key")

            started = time.perf_counter()
            await asyncio.gather(*(work(c) for c in pool))
            return clients * per_client / (time.perf_counter() - started)
        finally:
            for client in pool:
                await client.aclose()

    return uvloop.run(run())


# --- Postgres ---


def pg_select(port: int, count: int) -> Latency:
    async def run() -> Latency:
        conn = await asyncpg.connect(host=LOOPBACK, port=port, user=DB_USER, database=DB_NAME,
                                     password=PASSWORDS["postgres"], timeout=10)
        try:
            for _ in range(200):
                await conn.fetchval("SELECT 1")
            samples = []
            started = time.perf_counter()
            for _ in range(count):
                t0 = time.perf_counter_ns()
                await conn.fetchval("SELECT 1")
                samples.append(time.perf_counter_ns() - t0)
            return latency_of(samples, time.perf_counter() - started)
        finally:
            await conn.close(timeout=5)

    return uvloop.run(run())


def pg_concurrent(port: int, connections: int, per_connection: int) -> float:
    async def run() -> float:
        pool = await asyncpg.create_pool(host=LOOPBACK, port=port, user=DB_USER, database=DB_NAME,
                                         password=PASSWORDS["postgres"],
                                         min_size=connections, max_size=connections, timeout=10)
        try:
            async def work() -> None:
                async with pool.acquire() as conn:
                    for _ in range(per_connection):
                        await conn.fetchval("SELECT 1")

            started = time.perf_counter()
            await asyncio.gather(*(work() for _ in range(connections)))
            return connections * per_connection / (time.perf_counter() - started)
        finally:
            await asyncio.wait_for(pool.close(), 10)

    return uvloop.run(run())


# --- bulk ---


class Sink:
    """Accepts connections one after another and counts what each one delivers."""

    def __init__(self) -> None:
        self.listener = socket.create_server((LOOPBACK, 0))
        self.port = self.listener.getsockname()[1]
        self.results: list[tuple[int, float]] = []  # (bytes, time the last byte arrived)
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        buffer = bytearray(4 * 1024 * 1024)
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(60)
                total = 0
                try:
                    while n := conn.recv_into(buffer):
                        total += n
                except OSError:
                    pass
                self.results.append((total, time.perf_counter()))
                self.done.set()

    def close(self) -> None:
        self.listener.close()
        self._thread.join(5)


def bulk(sink: Sink, port: int, total: int, block: int = 1024 * 1024) -> float:
    """MB/s (10^6 bytes) for `total` bytes sent one way to `port`."""
    data = memoryview(b"\xa5" * block)
    sink.done.clear()
    with socket.create_connection((LOOPBACK, port), timeout=30) as sock:
        started = time.perf_counter()
        for _ in range(total // block):
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        if not sink.done.wait(60):
            raise RuntimeError("sink did not see the end of the transfer")
    received, finished = sink.results[-1]
    if received != total // block * block:
        raise RuntimeError(f"sink received {received} of {total} bytes")
    return received / (finished - started) / 1e6


# --- processes ---


@contextmanager
def services(workdir: Path) -> Iterator[tuple[int, int, ChildProcess, ToxiproxyClient]]:
    redis_server = RedisServer(workdir / "redis", free_port(), workdir / "redis.log")
    postgres = PostgresServer(workdir / "pg", free_port(), workdir / "postgres.log", max_connections=50)
    proxy_port = free_port()
    proxy = ChildProcess(
        "faultproxy",
        [sys.executable, "-m", "chaos.proxy", "--host", LOOPBACK, "--port", str(proxy_port), "--log-level", "warning"],
        workdir / "proxy.log", cwd=ROOT, kill_policy=KillPolicy(grace=3.0),
    )
    api = ToxiproxyClient(f"http://{LOOPBACK}:{proxy_port}")
    PASSWORDS.update(redis=redis_server.password, postgres=postgres.password)
    try:
        redis_server.start(time.monotonic() + 15)
        postgres.start(time.monotonic() + 60)
        proxy.start()
        proxy.wait_ready(lambda: bool(api.version()), time.monotonic() + 15, "serving its API")
        yield redis_server.port, postgres.port, proxy, api
    finally:
        proxy.stop()
        postgres.stop(KillPolicy(signal=2, grace=10.0))  # SIGINT: Postgres's fast shutdown
        redis_server.stop()


def measure(quick: bool) -> list[Row]:
    n = 3000 if quick else 20000
    pg_n = 2000 if quick else 10000
    bulk_bytes = (50 if quick else 200) * 1000 * 1000
    rounds = 3
    rows: list[Row] = []
    workdir = Path(tempfile.mkdtemp(prefix="gauntlet-bench-proxy-"))
    workdir.chmod(0o711)  # the postgres account must reach its own subdirectory
    sink = Sink()
    try:
        with services(workdir) as (redis_port, pg_port, proxy, api):
            via_redis = api.create_proxy("bench-redis", f"{LOOPBACK}:{redis_port}").listen_port
            via_pg = api.create_proxy("bench-postgres", f"{LOOPBACK}:{pg_port}").listen_port
            via_sink = api.create_proxy("bench-sink", f"{LOOPBACK}:{sink.port}").listen_port

            def best_latency(fn: Callable[[int, int], Latency], direct: int, proxied: int, count: int,
                             name: str) -> None:
                # Interleaved rounds, best p50 of each side: scheduler noise only ever adds.
                d = [fn(direct, count) for _ in range(1)]
                p = []
                for _ in range(rounds - 1):
                    p.append(fn(proxied, count))
                    d.append(fn(direct, count))
                p.append(fn(proxied, count))
                bd = min(d, key=lambda x: x.p50_us)
                bp = min(p, key=lambda x: x.p50_us)
                rows.append(Row(f"{name} p50", "µs", bd.p50_us, bp.p50_us, False))
                rows.append(Row(f"{name} p99", "µs", bd.p99_us, bp.p99_us, False))
                rows.append(Row(f"{name} ops/s (1 conn)", "op/s", bd.ops_per_s, bp.ops_per_s, True))

            best_latency(redis_ping, redis_port, via_redis, n, "redis PING")
            best_latency(redis_get, redis_port, via_redis, n, "redis GET")
            best_latency(resp_ping, redis_port, via_redis, n, "raw RESP PING")
            cpu = psutil.Process(proxy.pid)
            before = sum(cpu.cpu_times()[:2])
            resp_ping(via_redis, n)
            rows.append(Row("proxy CPU per round trip", "µs", 0.0,
                            (sum(cpu.cpu_times()[:2]) - before) / (n + 200) * 1e6, False))
            per = n // 16
            rows.append(Row("redis GET ops/s (16 clients)", "op/s",
                            max(redis_concurrent(redis_port, 16, per) for _ in range(2)),
                            max(redis_concurrent(via_redis, 16, per) for _ in range(2)), True))
            best_latency(pg_select, pg_port, via_pg, pg_n, "postgres SELECT 1")
            per = pg_n // 8
            rows.append(Row("postgres q/s (8 conns)", "q/s",
                            max(pg_concurrent(pg_port, 8, per) for _ in range(2)),
                            max(pg_concurrent(via_pg, 8, per) for _ in range(2)), True))

            bulk(sink, via_sink, 20 * 1000 * 1000)  # warm-up
            direct_mbs, proxied_mbs = [], []
            cpu_before = sum(cpu.cpu_times()[:2])
            for _ in range(rounds):
                direct_mbs.append(bulk(sink, sink.port, bulk_bytes))
                proxied_mbs.append(bulk(sink, via_sink, bulk_bytes))
            cpu_seconds = sum(cpu.cpu_times()[:2]) - cpu_before
            # Best of the interleaved rounds, as for latency: other load only ever slows a round.
            rows.append(Row(f"bulk {bulk_bytes // 10**6} MB", "MB/s", max(direct_mbs), max(proxied_mbs), True))
            gigabytes = rounds * bulk_bytes / 1e9
            rows.append(Row("proxy CPU per GB relayed", "s/GB", 0.0, cpu_seconds / gigabytes, False))
    finally:
        sink.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def report(rows: list[Row]) -> str:
    lines = [f"{'workload':34} {'direct':>12} {'via proxy':>12} {'ratio':>8}"]
    for row in rows:
        if row.direct:
            ratio = f"{row.ratio:.2f}x"
            lines.append(f"{row.name + ' (' + row.unit + ')':34} {row.direct:12,.1f} {row.proxied:12,.1f} {ratio:>8}")
        else:
            lines.append(f"{row.name + ' (' + row.unit + ')':34} {'':>12} {row.proxied:12,.2f}")
    verdicts = []
    for row in rows:
        if row.name.endswith(" p50"):
            ok = row.ratio <= P50_TARGET
            verdicts.append(f"{'ok  ' if ok else 'MISS'} {row.name}: {row.ratio:.2f}x direct (target <= {P50_TARGET}x)")
        if row.name.startswith("bulk"):
            ok = row.ratio >= THROUGHPUT_TARGET
            verdicts.append(f"{'ok  ' if ok else 'MISS'} {row.name}: {row.ratio:.0%} of direct "
                            f"(target >= {THROUGHPUT_TARGET:.0%})")
    return "\n".join(lines + [""] + verdicts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations and 50 MB bulk (a smoke run)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = measure(args.quick)
    print(f"chaos.proxy overhead, {psutil.cpu_count()} CPUs, Python {sys.version.split()[0]}, uvloop")
    print(report(rows))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) | {"ratio": r.ratio} for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
