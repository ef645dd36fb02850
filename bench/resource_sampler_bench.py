"""What the resource sampler costs, on a real stack.

Run: .venv/bin/python bench/resource_sampler_bench.py [--replicas 3] [--seconds 20]

Brings up a stack (N reference replicas, Postgres, Redis, fault proxy, nginx) and runs
the sampler at 1 Hz for `--seconds`, as `gauntlet run` does, then prints the CPU of the
sampler thread per sample and as a share of one core. Baselines in the same run, on
the same processes:
- bare reads: psutil cpu_times + memory_info of every sampled pid, nothing else (what
  any psutil sampler must pay);
- psutil.process_iter for the process tree, which the sampler replaces with one pass
  over /proc (the reason it does).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402

from harness.resources import ResourceSampler, stack_sampler  # noqa: E402
from harness.spec import StackSpec  # noqa: E402
from harness.stack import LocalStack  # noqa: E402


def cpu_ms(fn, rounds: int) -> float:
    start = time.thread_time()
    for _ in range(rounds):
        fn()
    return (time.thread_time() - start) / rounds * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack = LocalStack(StackSpec(replicas=args.replicas, runs_dir=Path(tmp)))
        stack.up()
        try:
            sampler = stack_sampler(stack.run_dir, stack.run_dir / "state.json")
            sampler.start()
            time.sleep(args.seconds)
            stats = sampler.stop()
            pids = []
            children = ResourceSampler._children_map()
            for w in sampler.sources[0].watched():
                pids += ResourceSampler._tree(w.pid, children)

            def bare() -> None:
                for pid in pids:
                    p = psutil.Process(pid)
                    with p.oneshot():
                        p.cpu_times()
                        p.memory_info()

            bare_ms = statistics.median(cpu_ms(bare, 20) for _ in range(5))
            proc_ms = statistics.median(cpu_ms(ResourceSampler._children_map, 20) for _ in range(5))
            iter_ms = statistics.median(cpu_ms(lambda: [p.info for p in psutil.process_iter(["ppid"])], 20)
                                        for _ in range(5))
        finally:
            stack.down()
    per = stats.cpu_s / stats.samples * 1000
    print(f"stack: {args.replicas} replicas, {len(pids)} processes sampled; machine: {psutil.cpu_count()} cores, "
          f"{len(psutil.pids())} processes, load average {psutil.getloadavg()[0]:.1f}")
    print(f"sampler: {stats.samples} samples, {per:.2f} ms CPU per sample, "
          f"{100 * stats.cpu_s / stats.wall_s:.2f} % of one core at 1 Hz, {stats.errors} errors")
    print(f"baseline, same processes: bare psutil reads {bare_ms:.2f} ms per sample")
    print(f"process tree: one /proc pass {proc_ms:.2f} ms, psutil.process_iter {iter_ms:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
