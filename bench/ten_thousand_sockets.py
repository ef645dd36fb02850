"""10,000 concurrent WebSockets in one `gauntlet run` on this machine, and its figures.

    python bench/ten_thousand_sockets.py                      # the run (about 3 min), then its figures
    python bench/ten_thousand_sockets.py --write-docs         # ... and fill docs/capacity.md's block
    python bench/ten_thousand_sockets.py --from runs/<stamp>  # the figures of a run made before

The run: 3 replicas behind nginx, Redis as the broker, the load in `--processes 2`,
SOCKETS subscribers ramped over RAMP and held for HOLD, plus PUBLISHERS publishers
at RATE msg/s each addressing users of a pool of POOL (so each message goes to
SOCKETS / POOL sockets spread over the replicas, most of them on another replica
than the publish). Delivery is checked from the raw records as in every run.

Figures: how long the ramp took to hold every socket, connect (handshake + welcome)
times from Locust's `WS connect` entries, connect failures, deliveries owed / made /
lost and their latency from recv.csv, the measurement validity (was the load
generator keeping up, docs/reports.md), peak memory per component and per socket,
and what the resource samples name as the bottleneck. A run that could not hold
every socket says where it stopped (the peak) and why (the connect failures' reasons,
the verdict's notes).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "capacity.md"
BEGIN, END = "<!-- tenk:begin -->", "<!-- tenk:end -->"


def run(args: argparse.Namespace) -> Path:
    users = args.sockets + args.publishers
    locust_args = (f"--subscriber-weight 1 --publisher-weight 0 --reader-weight 0 --publishers {args.publishers} "
                   f"--publish-rate {args.rate:g} --user-pool {args.pool} --broadcast-ratio {args.broadcast:g} "
                   f"--no-ws-stats --first-connect-spread {args.spread}")
    argv = [sys.executable, "-m", "harness.cli", "run", "ramp", "--processes", str(args.processes),
            "--replicas", str(args.replicas), "--stages", f"{args.ramp}:{users},{args.hold}:{users}",
            "--seed", str(args.seed), "--locust-args", locust_args, "--quiet"]
    print("$ gauntlet " + " ".join(argv[3:]), flush=True)
    t0 = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=args.timeout)
    print(done.stdout[-4000:], done.stderr[-2000:], sep="\n", flush=True)
    print(f"gauntlet run took {time.monotonic() - t0:.0f} s (exit {done.returncode})", flush=True)
    found = re.search(r"^run (\S+) \(seed", done.stdout, re.M)
    if not found:
        raise SystemExit("the run printed no run directory")
    return ROOT / "runs" / found.group(1)


def _rows(path: Path):
    with open(path, newline="") as fh:
        yield from csv.DictReader(fh)


def figures(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    meta = json.loads((run_dir / "run.json").read_text())
    workers = sorted(p for p in (run_dir / "records").iterdir() if p.is_dir())
    # Open sockets over time: every process samples its own once a second.
    per_second: dict[int, int] = defaultdict(int)
    for w in workers:
        seen = {}
        for r in _rows(w / "users.csv"):
            seen[int(float(r["ts"]))] = int(r["sockets"] or 0)
        for t, n in seen.items():
            per_second[t] += n
    peak_sockets = max(per_second.values(), default=0)
    first_connects, fails, fail_reasons = [], 0, Counter()
    for w in workers:
        for r in _rows(w / "conn.csv"):
            if r["event"] == "connect" and r["conn"] == "1":
                first_connects.append(float(r["ts"]))
            elif r["event"] == "connect_fail":
                fails += 1
                fail_reasons[r["detail"][:80]] += 1
    first_connects.sort()
    start = float(meta.get("started") or (first_connects[0] if first_connects else 0))
    lat = []
    for w in workers:
        for r in _rows(w / "recv.csv"):
            if r["sent_ts"] and r["replay"] in ("0", "False", "false", ""):
                lat.append(float(r["ts"]) - float(r["sent_ts"]))
    lat_ms = np.array(lat) * 1000.0
    connect = {}
    stats = run_dir / "locust_stats.csv"
    if stats.exists():
        for r in _rows(stats):
            if r["Type"] == "WS" and r["Name"] == "connect":
                connect = {"count": int(r["Request Count"]), "failures": int(r["Failure Count"]),
                           "p50_ms": float(r["50%"]), "p95_ms": float(r["95%"]), "p99_ms": float(r["99%"]),
                           "max_ms": float(r["Max Response Time"])}
    comps = {c["component"]: c for c in summary.get("resources", {}).get("components", [])}
    replicas = sorted(n for n, c in comps.items() if c.get("kind") == "replica")
    loads = sorted(n for n, c in comps.items() if c.get("kind") == "load" and re.fullmatch(r"load-w\d+", n))
    # Memory a socket costs: each component's peak less its own idle size (its smallest sample).
    idle: dict[str, float] = {}
    for r in _rows(run_dir / "resources.csv"):
        if r["rss_mb"]:
            idle[r["component"]] = min(idle.get(r["component"], float("inf")), float(r["rss_mb"]))
    counts = summary["delivery"]["counts"]
    m = summary.get("measurement") or {}
    return {
        "run": run_dir.name, "verdict": summary["verdict"], "exit_code": summary.get("exit_code"),
        "sockets_planned": None, "peak_sockets": peak_sockets,
        "all_connected_after_s": (first_connects[-1] - start) if first_connects else None,
        "first_connects": len(first_connects), "connect_failures": fails,
        "connect_fail_reasons": fail_reasons.most_common(3), "connect": connect,
        "publishes": counts["publishes"], "acknowledged": counts["acknowledged"],
        "owed": counts["expected_live"], "delivered": counts["delivered_live"], "lost": counts["lost_live"],
        "duplicated": counts["duplicated"], "subscribers": counts["subscribers"],
        "delivery_p50_ms": float(np.percentile(lat_ms, 50)) if len(lat_ms) else None,
        "delivery_p99_ms": float(np.percentile(lat_ms, 99)) if len(lat_ms) else None,
        "delivery_max_ms": float(lat_ms.max()) if len(lat_ms) else None,
        "measurement": m.get("headline", "not recorded"), "measurement_valid": m.get("valid"),
        "lateness_ms": m.get("lateness_ms"),
        "rss_mb": {n: comps[n].get("rss_peak_mb") for n in [*replicas, "nginx", *loads, "redis", "postgres"]
                   if n in comps},
        "idle_rss_mb": {n: idle.get(n) for n in comps},
        "cpu_mean": {n: comps[n].get("cpu_mean") for n in [*replicas, "nginx", *loads, "redis", "postgres"]
                     if n in comps},
        "bottleneck": summary.get("resources", {}).get("bottleneck", ""),
        "notes": summary.get("notes", []),
        "argv": meta.get("argv"),
    }


def _f(v, fmt="{:,.0f}") -> str:
    return "n/a" if v is None else fmt.format(v)


def render(f: dict) -> str:
    c = f["connect"]
    rss = f["rss_mb"]
    replicas = [n for n in rss if re.fullmatch(r"r\d+", n)]
    loads = [n for n in rss if n.startswith("load-")]
    socks = max(1, f["peak_sockets"])
    per_replica = socks / max(1, len(replicas))

    def grown(names: list[str]) -> float:
        return sum(rss[n] - (f["idle_rss_mb"].get(n) or 0.0) for n in names if rss.get(n) is not None)

    lines = [
        f"Run `{f['run']}` (`{' '.join(f['argv'] or [])}`), verdict **{f['verdict']}**.",
        "",
        "| figure | measured |",
        "|---|---|",
        f"| sockets held at once (peak of the processes' samples) | {f['peak_sockets']:,} |",
        f"| every subscriber connected after | {_f(f['all_connected_after_s'], '{:.1f} s')} "
        f"({f['first_connects']:,} first connects, {f['connect_failures']:,} failed attempts) |",
        f"| connect (handshake + welcome) p50 / p95 / p99 / max | {_f(c.get('p50_ms'))} / {_f(c.get('p95_ms'))} / "
        f"{_f(c.get('p99_ms'))} / {_f(c.get('max_ms'))} ms |",
        f"| publishes acknowledged | {f['acknowledged']:,} of {f['publishes']:,} |",
        f"| deliveries owed / made / lost / duplicated | {f['owed']:,} / {f['delivered']:,} / {f['lost']:,} / "
        f"{f['duplicated']:,} |",
        f"| delivery latency p50 / p99 / max | {_f(f['delivery_p50_ms'])} / {_f(f['delivery_p99_ms'])} / "
        f"{_f(f['delivery_max_ms'])} ms |",
        f"| measurement | {f['measurement']} |",
        "| peak memory | " + ", ".join(f"{n} {v:,.0f} MB" for n, v in rss.items() if v is not None) + " |",
        f"| memory per socket (peak less idle) | replica {grown(replicas) / socks * 1024:,.0f} KB "
        f"({per_replica:,.0f} sockets each), nginx {grown(['nginx']) / socks * 1024:,.0f} KB, "
        f"load generator {grown(loads) / socks * 1024:,.0f} KB |",
        "| CPU mean (cores) | " + ", ".join(f"{n} {v:.2f}" for n, v in f["cpu_mean"].items() if v is not None)
        + " |",
        f"| bottleneck | {f['bottleneck'] or 'none named'} |",
    ]
    if f["connect_fail_reasons"]:
        lines.append("| connect failures | " + "; ".join(f"{n}× {r}" for r, n in f["connect_fail_reasons"]) + " |")
    for note in f["notes"]:
        lines.append(f"| note | {note} |")
    return "\n".join(lines)


def write_docs(text: str) -> None:
    page = DOCS.read_text()
    if BEGIN not in page or END not in page:
        raise SystemExit(f"{DOCS} has no {BEGIN} ... {END} block to fill")
    head, rest = page.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOCS.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sockets", type=int, default=10_000)
    p.add_argument("--ramp", default="60s")
    p.add_argument("--hold", default="60s")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--publishers", type=int, default=4)
    p.add_argument("--rate", type=float, default=10.0, help="msg/s per publisher")
    p.add_argument("--pool", type=int, default=500, help="users addressed; SOCKETS/POOL sockets per user")
    p.add_argument("--broadcast", type=float, default=0.0, help="share of publishes that go to every socket")
    p.add_argument("--spread", default="1s", help="--first-connect-spread (0: a tick's users connect at once)")
    p.add_argument("--seed", type=int, default=10_000)
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--from", dest="from_dir", help="summarise this run directory instead of running")
    p.add_argument("--write-docs", action="store_true")
    args = p.parse_args()
    run_dir = Path(args.from_dir) if args.from_dir else run(args)
    f = figures(run_dir)
    text = render(f)
    print(text)
    (run_dir / "ten_thousand_sockets.json").write_text(json.dumps(f, indent=2, default=str))
    if args.write_docs:
        write_docs(text)


if __name__ == "__main__":
    main()
