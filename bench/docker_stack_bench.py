"""Bring-up to ready and teardown of the same stack on each backend, warm images.

Run: .venv/bin/python bench/docker_stack_bench.py [--rounds 3] [--replicas 3] [--json out.json]

The stack: 3 reference-SUT replicas (Redis broker), Postgres, Redis, the fault proxy
with a pair of proxies per replica, nginx. "up" ends when every replica answers
/api/ready and nginx answers, "down" when nothing of the run is left (for Docker and
Swarm: no container, service, network or volume with the run's label; a Swarm the run
created is left again). Baseline in the same run: the embedded backend (local
processes), the same topology. Images must be built (`make docker-images`); their build
is not part of the figures. A private dockerd is started as the tests do when none runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.backends import make_stack  # noqa: E402
from harness.spec import StackSpec  # noqa: E402

BACKENDS = ("local", "docker", "swarm")  # local: the embedded backend


def ensure_daemon():
    """A Docker daemon with gauntlet's images; the shared private one if none answers."""
    from harness.docker.daemon import SharedDaemon, docker_host, ping
    from harness.docker.images import RECIPES, connect, has_image

    daemon = None
    if not ping(docker_host()):
        daemon = SharedDaemon()
        os.environ["DOCKER_HOST"] = daemon.acquire()
    client = connect()
    missing = [r.image for r in RECIPES.values() if not has_image(client, r.image)]
    client.close()
    if missing:
        if daemon is not None:
            daemon.release()
        raise SystemExit(f"images missing: {', '.join(missing)} (run `make docker-base docker-images`)")
    return daemon


def memory_by_role(run: str) -> dict[str, float]:
    """MB per container of the run, by role (the cgroup's usage less its page cache), largest of a role."""
    from concurrent.futures import ThreadPoolExecutor

    from harness.docker.daemon import connect
    from harness.docker.topology import ROLE_LABEL, RUN_LABEL

    client = connect()
    try:
        containers = client.containers.list(filters={"label": f"{RUN_LABEL}={run}"})

        def mb(c) -> tuple[str, float]:
            mem = c.stats(stream=False)["memory_stats"]
            return c.labels.get(ROLE_LABEL, "?"), (mem.get("usage", 0) - mem.get("stats", {}).get("cache", 0)) / 2**20

        with ThreadPoolExecutor(max_workers=8) as pool:
            found = list(pool.map(mb, containers))
    finally:
        client.close()
    out: dict[str, float] = {}
    for role, value in found:
        out[role] = max(out.get(role, 0.0), value)
    return out


def one_round(backend: str, replicas: int, runs_dir: Path, memory: dict) -> tuple[float, float]:
    stack = make_stack(StackSpec(backend=backend, replicas=replicas, broker="redis", runs_dir=runs_dir))
    t0 = time.monotonic()
    try:
        stack.up()
        up = time.monotonic() - t0
        if backend != "local" and not memory:
            memory.update(memory_by_role(stack.run))
    finally:
        t1 = time.monotonic()
        stack.down()
        down = time.monotonic() - t1
    return up, down


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    unknown = set(backends) - set(BACKENDS)
    if unknown or args.rounds < 1 or args.replicas < 1:
        print(f"bench: error: backends are {', '.join(BACKENDS)}; rounds and replicas >= 1", file=sys.stderr)
        return 2
    daemon = ensure_daemon() if set(backends) - {"local"} else None
    results: dict[str, dict] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="gauntlet-bench-") as tmp:
            for backend in backends:
                ups, downs, memory = [], [], {}
                # Interleaving is not needed for fairness here: each round is a cold start of
                # the stack's processes with warm images and a warm page cache for all three.
                for _ in range(args.rounds):
                    up, down = one_round(backend, args.replicas, Path(tmp) / backend, memory)
                    ups.append(up)
                    downs.append(down)
                results[backend] = {"up_s": statistics.median(ups), "down_s": statistics.median(downs),
                                    "up_all_s": ups, "down_all_s": downs, "memory_mb": memory}
    finally:
        if daemon is not None:
            daemon.release()
    base = results.get("local")
    print(f"{args.replicas} replicas, redis broker, median of {args.rounds} rounds "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"{'backend':10} {'up to ready':>12} {'down':>8} {'up vs local':>15}")
    for backend, r in results.items():
        ratio = f"{r['up_s'] / base['up_s']:.1f}x" if base else "-"
        print(f"{backend:10} {r['up_s']:11.1f}s {r['down_s']:7.1f}s {ratio:>15}")
    for backend, r in results.items():
        if r["memory_mb"]:
            print(f"{backend} memory per container, MB (idle, after up): "
                  + ", ".join(f"{role} {mb:.0f}" for role, mb in sorted(r["memory_mb"].items())))
    if args.json:
        args.json.write_text(json.dumps({"replicas": args.replicas, "rounds": args.rounds, "results": results},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
