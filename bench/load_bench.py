"""What gauntlet's load side costs on a load generator, measured against bare Locust.

    python bench/load_bench.py                 # everything, prints a table
    python bench/load_bench.py --write-docs    # ... and puts the figures into docs/load.md
    python bench/load_bench.py --quick         # shorter runs, fewer sockets

Per load-generator core (requests or messages per CPU-second of the client process):

- HTTP: gauntlet's open-model PublisherUser with its pub.csv/http.csv records, against
  a bare FastHttpUser posting the same request at the same offered rate;
- WebSocket: gauntlet's SubscriberUser (reference adapter: JSON decode, recv.csv, live
  `WS deliver` statistics), against a bare Locust receive loop (websockets.sync recv,
  json.loads, one `events.request` per message, as the bare FastHttpUser reports each
  request) on the same sockets and frames; and against a raw loop without statistics;
- recorder share: CPU of one core spent recording at 20,000 received messages/s, from
  the recorder's cost per row (measured directly), cross-checked by running the same
  subscribers with the recorder and with one that drops rows;
- idle sockets: how many SubscriberUser WebSockets one process holds (the soft
  RLIMIT_NOFILE is raised to the hard limit first), and their memory.

Every figure comes from the same invocation, against a trivial server this script
starts on 127.0.0.1 in its own process (aiohttp for HTTP, websockets for WebSocket),
and every client runs in a fresh process. Targets: ratios >= 0.85, recorder <= 10 %,
idle sockets >= 10,000.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "load.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
SECRET, PUBLISHER_KEY = "bench-secret", "bench-key"


def raise_nofile() -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the trivial server (its own process) -------------------------------------------------


def serve(http_port: int, ws_port: int) -> None:
    """HTTP publish endpoints (201 + X-Instance) and a WebSocket that speaks the reference
    protocol: init frame, then /ws/<count>/<rate> notification frames, then idles."""
    import asyncio

    import websockets
    from aiohttp import web

    raise_nofile()
    ids = [0]

    async def publish(request: web.Request) -> web.Response:
        await request.read()
        ids[0] += 1
        return web.Response(body=b'{"id": %d, "user": "u1", "instance": "b1"}' % ids[0], status=201,
                            content_type="application/json", headers={"X-Instance": "b1"})

    async def ws_handler(ws) -> None:
        parts = ws.request.path.split("?")[0].strip("/").split("/")
        count = int(parts[1]) if len(parts) > 1 else 0
        rate = float(parts[2]) if len(parts) > 2 else 0.0
        user = ws.request.path.split("token=")[-1].split(".")[0] if "token=" in ws.request.path else "u0"
        await ws.send(json.dumps({"type": "init", "instance": "b1", "user": user, "items": [], "last_id": 0}))
        head = '{"type":"notification","id":%d,"user":"' + user + '","origin":"b2","data":{"key":"bench-%d","sent_ts":%.6f}}'
        sent_ts = time.time()
        start = time.monotonic()
        for i in range(1, count + 1):
            if i % 500 == 0:
                sent_ts = time.time()
            await ws.send(head % (i, i, sent_ts))
            if rate > 0:
                lag = start + i / rate - time.monotonic()
                if lag > 0:
                    await asyncio.sleep(lag)
            elif i % 200 == 0:
                await asyncio.sleep(0)
        try:
            await ws.wait_closed()
        except Exception:
            pass

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/api/notifications", publish)
        app.router.add_post("/api/broadcast", publish)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", http_port, backlog=4096).start()
        async with websockets.serve(ws_handler, "127.0.0.1", ws_port, compression=None, backlog=4096,
                                    ping_interval=None, max_queue=None):
            print("ready", flush=True)
            await asyncio.Future()

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())


# -- clients (each in a fresh process; these import Locust, which patches with gevent) ------


def client(args: argparse.Namespace) -> dict:
    from gevent import monkey

    monkey.patch_all()
    import gevent
    from locust import constant_throughput, events
    from locust.contrib.fasthttp import FastHttpUser
    from locust.env import Environment

    nofile = raise_nofile()
    sys.path.insert(0, str(ROOT))

    from scenarios.adapters import Endpoint, make_adapter
    from scenarios.plugin import Plugin, apply_user_settings
    from scenarios.process import LoadProcess, set_current
    from scenarios.recorder import Recorder
    from scenarios.settings import parse_args
    from scenarios.target import Target
    from scenarios.users import PublisherUser, SubscriberUser

    http_url = f"http://127.0.0.1:{args.http_port}"
    ws_base = f"ws://127.0.0.1:{args.ws_port}/ws/{args.count}/{args.rate}"
    result: dict = {"variant": args.variant, "nofile": nofile[0]}

    def our_process(env, settings, null_recorder=False) -> LoadProcess:
        target = Target(http_url, ws_base, SECRET, PUBLISHER_KEY)
        adapter = make_adapter("reference", Endpoint(http_url, ws_base, SECRET, PUBLISHER_KEY), {})
        rec = Recorder(Path(args.records) / args.variant, "w0", batch=settings.flush_every)
        if null_recorder:
            drop = lambda row: None  # noqa: E731
            rec.http = rec.pub = rec.recv = rec.conn = rec.users = drop
        rec.start()
        proc = LoadProcess(environment=env, settings=settings, target=target, adapter=adapter, recorder=rec,
                           worker="w0", worker_index=0, workers=1, seed=1)
        set_current(proc)
        plugin = Plugin(environment=env, settings=settings, role="local", seed=1)
        plugin.proc = proc
        env.events.request.add_listener(plugin.on_request)
        return proc

    if args.variant in ("http-bare", "http-ours"):
        per_user = args.rate / args.users

        class BarePublisher(FastHttpUser):
            host = http_url
            wait_time = constant_throughput(per_user)
            concurrency = 10

            def task_publish(self) -> None:
                self.client.post("/api/notifications", json={"user": "u1", "data": {"key": "x", "sent_ts": 1.0}},
                                 headers={"Authorization": f"Bearer {PUBLISHER_KEY}"},
                                 name="POST /api/notifications")

            tasks = [task_publish]

        if args.variant == "http-bare":
            env = Environment(user_classes=[BarePublisher], events=events, host=http_url)
        else:
            settings = parse_args(["--publish-rate", str(per_user), "--broadcast-ratio", "0",
                                     "--max-inflight", "200"])
            env = Environment(user_classes=[PublisherUser], events=events, host=http_url)
            apply_user_settings(env, settings)
            proc = our_process(env, settings)
        runner = env.create_local_runner()
        runner.start(args.users, spawn_rate=args.users, wait=False)
        gevent.sleep(2.0)  # warm-up: users started, connections open
        n0, c0, t0 = env.stats.total.num_requests, cpu_seconds(), time.monotonic()
        gevent.sleep(args.seconds)
        n1, c1, t1 = env.stats.total.num_requests, cpu_seconds(), time.monotonic()
        runner.quit()
        result.update(count=n1 - n0, cpu=c1 - c0, wall=t1 - t0,
                      failures=env.stats.total.num_failures)
        if args.variant == "http-ours":
            proc.recorder.close()
            result["pub_rows"] = sum(1 for _ in open(proc.recorder.directory / "pub.csv")) - 1
        return result

    if args.variant in ("ws-raw", "ws-locust"):
        # The bare loops: receive and parse; the Locust one also reports each message
        # to Locust's statistics, as a plain Locust WebSocket user would.
        from websockets.sync.client import connect

        env = Environment(user_classes=[], events=events, host=http_url)
        env.create_local_runner()
        fire = env.events.request.fire
        received = [0]
        report = args.variant == "ws-locust"

        def loop(i: int) -> None:
            ws = connect(f"{ws_base}?token=u{i}.x", compression=None, ping_interval=None, legacy=True,
                         open_timeout=30)
            try:
                while True:
                    frame = json.loads(ws.recv())
                    received[0] += 1
                    if report and frame.get("type") == "notification":
                        fire(request_type="WS", name="message", response_time=(time.time() - frame["data"]["sent_ts"]) * 1000,
                             response_length=0, exception=None, context={})
            except Exception:
                pass

        greenlets = [gevent.spawn(loop, i) for i in range(args.users)]
        return measure_messages(result, lambda: received[0], args, greenlets)

    if args.variant in ("ws-ours", "ws-ours-norec", "idle"):
        settings = parse_args(["--subscriber-weight", "1", "--user-pool", str(max(args.users, 1)),
                                 "--connect-timeout", "60s", "--reconnects-per-minute", "5"])
        env = Environment(user_classes=[SubscriberUser], events=events, host=http_url)
        apply_user_settings(env, settings)
        proc = our_process(env, settings, null_recorder=args.variant == "ws-ours-norec")
        runner = env.create_local_runner()
        if args.variant != "idle":
            runner.start(args.users, spawn_rate=args.users, wait=False)
            # Deliveries are Locust statistics entries; no extra listener skews the cost.
            return measure_messages(result, lambda: env.stats.total.num_requests, args, [], runner=runner,
                                    proc=proc)
        return measure_idle(result, runner, proc, args)
    raise SystemExit(f"unknown variant {args.variant}")


def measure_messages(result: dict, received, args, greenlets, runner=None, proc=None) -> dict:
    import gevent

    deadline = time.monotonic() + 60
    while received() < 10 * args.users and time.monotonic() < deadline:  # connected, frames flowing
        gevent.sleep(0.05)
    gevent.sleep(1.0)
    n0, c0, t0 = received(), cpu_seconds(), time.monotonic()
    gevent.sleep(args.seconds)
    n1, c1, t1 = received(), cpu_seconds(), time.monotonic()
    result.update(count=n1 - n0, cpu=c1 - c0, wall=t1 - t0)
    if runner is not None:
        runner.quit()
    if proc is not None:
        proc.recorder.close()
    gevent.killall(greenlets, block=False)
    return result


def measure_idle(result: dict, runner, proc, args) -> dict:
    import gevent
    import psutil

    rss0 = psutil.Process().memory_info().rss
    t0 = time.monotonic()
    runner.start(args.users, spawn_rate=2000, wait=False)
    deadline = t0 + 240
    while proc.sockets < args.users and time.monotonic() < deadline:
        gevent.sleep(0.5)
    connected_in = time.monotonic() - t0
    gevent.sleep(5.0)  # hold them: still open after five quiet seconds?
    result.update(target=args.users, open=proc.sockets, connect_s=round(connected_in, 1),
                  rss_mb=round((psutil.Process().memory_info().rss - rss0) / 2**20, 1),
                  connect_fails=sum(1 for line in open(proc.recorder.directory / "conn.csv")
                                    if ",connect_fail," in line))
    runner.quit()
    proc.recorder.close()
    return result


# -- orchestration ------------------------------------------------------------------------


def run_client(variant: str, http_port: int, ws_port: int, records: Path, users: int, seconds: float = 0.0,
               rate: float = 0.0, count: int = 0, timeout: float = 400) -> dict:
    cmd = [sys.executable, __file__, "client", variant, "--http-port", str(http_port), "--ws-port", str(ws_port),
           "--users", str(users), "--seconds", str(seconds), "--rate", str(rate), "--count", str(count),
           "--records", str(records)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
        raise SystemExit(f"bench client {variant} did not finish within {timeout}s")
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"bench client {variant} failed (exit {proc.returncode})")
    return json.loads(lines[-1])


def recorder_cost(directory: Path, rows: int = 200_000) -> float:
    """CPU seconds per recv row: append, batch formatting and writing, all included."""
    sys.path.insert(0, str(ROOT))
    from scenarios.recorder import Recorder

    rec = Recorder(directory, "w0", batch=2000)
    base = time.time()
    c0 = cpu_seconds()
    for i in range(rows):
        ts = base + i * 5e-5
        rec.recv((ts, "w0-s17", "u17", 3, "r1", f"w1-{i}", 100000 + i, "r2", ts - 0.0042, 0))
    rec.close()
    return (cpu_seconds() - c0) / rows


def per_cpu(r: dict) -> float:
    return r["count"] / r["cpu"] if r["cpu"] > 0 else 0.0


def orchestrate(args: argparse.Namespace) -> dict:
    import tempfile

    http_port, ws_port = free_port(), free_port()
    server = subprocess.Popen([sys.executable, __file__, "serve", str(http_port), str(ws_port)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    records = Path(tempfile.mkdtemp(prefix="gauntlet-bench-"))
    try:
        ready = server.stdout.readline()
        if b"ready" not in ready:
            raise SystemExit("bench server did not start")
        quick = args.quick
        secs = 5.0 if quick else 10.0
        figures: dict = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
        import locust

        figures["locust"] = locust.__version__

        reps = 2 if quick else 3

        def best_of(variants: list[str], **kw) -> dict[str, dict]:
            """Alternate the variants `reps` times; keep each one's median run (by work per
            CPU-second), so a noisy neighbour hits all variants alike."""
            runs: dict[str, list[dict]] = {v: [] for v in variants}
            for _ in range(reps):
                for v in variants:
                    runs[v].append(run_client(v, http_port, ws_port, records, **kw))
            return {v: sorted(rs, key=per_cpu)[len(rs) // 2] for v, rs in runs.items()}

        print("HTTP (open model at a fixed offered rate) ...", flush=True)
        rate = 1500.0
        h = best_of(["http-bare", "http-ours"], users=30, seconds=secs, rate=rate)
        figures["http"] = {"rate": rate, "bare": h["http-bare"], "ours": h["http-ours"],
                           "bare_per_cpu": per_cpu(h["http-bare"]), "ours_per_cpu": per_cpu(h["http-ours"]),
                           "ratio": per_cpu(h["http-ours"]) / per_cpu(h["http-bare"])}

        print("WebSocket receive (server pushes as fast as it can) ...", flush=True)
        socks = 50
        w = best_of(["ws-raw", "ws-locust", "ws-ours"], users=socks, seconds=secs, count=10_000_000)
        figures["ws"] = {"sockets": socks, "raw": w["ws-raw"], "bare": w["ws-locust"], "ours": w["ws-ours"],
                         "raw_per_cpu": per_cpu(w["ws-raw"]), "bare_per_cpu": per_cpu(w["ws-locust"]),
                         "ours_per_cpu": per_cpu(w["ws-ours"]),
                         "ratio": per_cpu(w["ws-ours"]) / per_cpu(w["ws-locust"]),
                         "ratio_raw": per_cpu(w["ws-ours"]) / per_cpu(w["ws-raw"])}

        print("Recorder share at 20,000 messages/s ...", flush=True)
        direct = recorder_cost(records / "direct")
        socks = 100
        per_sock = 20_000 / socks
        r = best_of(["ws-ours", "ws-ours-norec"], users=socks, seconds=secs, rate=per_sock, count=10_000_000)
        rec_on, rec_off = r["ws-ours"], r["ws-ours-norec"]
        on_rate, off_rate = rec_on["count"] / rec_on["wall"], rec_off["count"] / rec_off["wall"]
        on_cpu, off_cpu = rec_on["cpu"] / rec_on["wall"], rec_off["cpu"] / rec_off["wall"]
        figures["recorder"] = {"rate_with": on_rate, "rate_without": off_rate, "cpu_with": on_cpu,
                               "cpu_without": off_cpu, "us_per_msg": direct * 1e6,
                               "share_at_20k": direct * 20_000,
                               "diff_share_at_20k": max(0.0, (on_cpu / on_rate - off_cpu / off_rate) * 20_000)}

        print("Idle WebSockets in one process ...", flush=True)
        target = 3000 if quick else 10_000
        idle = run_client("idle", http_port, ws_port, records, target, timeout=600)
        figures["idle"] = idle
        return figures
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        import shutil

        shutil.rmtree(records, ignore_errors=True)


def render(f: dict) -> str:
    h, w, r, i = f["http"], f["ws"], f["recorder"], f["idle"]

    def verdict(value: bool) -> str:
        return "meets target" if value else "BELOW target"

    return "\n".join([
        f"Measured on {f['cpus']} CPU(s), Python {f['python']}, Locust {f['locust']}. Server and client share "
        "the machine; figures are work per CPU-second of the load-generating process (median of alternating "
        "runs), so they do not depend on how fast the trivial server is.",
        "",
        "| measure | gauntlet | bare | ratio / value | target |",
        "|---|---|---|---|---|",
        f"| HTTP publishes per core-second (offered {h['rate']:.0f}/s; bare = FastHttpUser) | "
        f"{h['ours_per_cpu']:,.0f} | {h['bare_per_cpu']:,.0f} | {h['ratio']:.2f} ({verdict(h['ratio'] >= 0.85)}) "
        "| >= 0.85 |",
        f"| WebSocket messages per core-second ({w['sockets']} sockets; bare = recv + parse + Locust statistics) | "
        f"{w['ours_per_cpu']:,.0f} | {w['bare_per_cpu']:,.0f} | {w['ratio']:.2f} ({verdict(w['ratio'] >= 0.85)}) "
        "| >= 0.85 |",
        f"| ... against a raw loop (recv + parse, no statistics) | {w['ours_per_cpu']:,.0f} | "
        f"{w['raw_per_cpu']:,.0f} | {w['ratio_raw']:.2f} | |",
        f"| recorder CPU at 20,000 msgs/s ({r['us_per_msg']:.2f} µs per row) | | | "
        f"{100 * r['share_at_20k']:.1f} % of a core ({verdict(r['share_at_20k'] <= 0.10)}); "
        f"{100 * r['diff_share_at_20k']:.1f} % from the with/without run | <= 10 % |",
        f"| idle WebSockets held by one process | {i['open']:,} of {i['target']:,} | | "
        f"connected in {i['connect_s']} s, +{i['rss_mb']} MB, {i['connect_fails']} connect failures "
        f"({verdict(i['open'] >= 10_000)}) | >= 10,000 |",
        "",
        f"Rates reached: HTTP {h['ours']['count'] / h['ours']['wall']:,.0f}/s (gauntlet), "
        f"{h['bare']['count'] / h['bare']['wall']:,.0f}/s (bare); WebSocket "
        f"{w['ours']['count'] / w['ours']['wall']:,.0f}/s, {w['bare']['count'] / w['bare']['wall']:,.0f}/s, "
        f"{w['raw']['count'] / w['raw']['wall']:,.0f}/s (raw); recorder runs {r['rate_with']:,.0f}/s with "
        f"records, {r['rate_without']:,.0f}/s without.",
    ])


def write_docs(text: str) -> None:
    page = DOCS.read_text()
    if BEGIN not in page or END not in page:
        raise SystemExit(f"{DOCS} has no {BEGIN} ... {END} block to fill")
    head, rest = page.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOCS.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), int(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        p = argparse.ArgumentParser()
        p.add_argument("variant")
        for name, kind in (("--http-port", int), ("--ws-port", int), ("--users", int), ("--seconds", float),
                           ("--rate", float), ("--count", int), ("--records", str)):
            p.add_argument(name, type=kind, required=True)
        print(json.dumps(client(p.parse_args(sys.argv[2:]))), flush=True)
        os._exit(0)  # do not wait for sockets still draining
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="shorter runs, 3,000 idle sockets")
    p.add_argument("--write-docs", action="store_true", help="put the figures into docs/load.md")
    p.add_argument("--json", action="store_true", help="print the raw figures as JSON too")
    args = p.parse_args()
    raise_nofile()
    figures = orchestrate(args)
    text = render(figures)
    print()
    print(text)
    if args.json:
        print(json.dumps(figures, indent=2, default=str))
    if args.write_docs:
        write_docs(text)
        print(f"\nwritten to {DOCS}")


if __name__ == "__main__":
    main()
