"""Check + report time and peak memory at scale, against a same-run read of the same files.

    .venv/bin/python bench/report_bench.py [--records 1000000] [--keep DIR | --run DIR] [--repeat N]

Builds a seeded synthetic run (tests/synthetic.py: 400 subscribers over 3 replicas,
a partition and a kill, every anomaly injected), or reuses one built before with
--keep (`--run DIR`), then measures what `gauntlet report RUN_DIR` does, each in a
fresh child process so that its peak RSS (getrusage ru_maxrss) is its own: importing
the checker, reading the run, every check (records, faults, delivery with order,
recovery, thresholds) with summary.json and junit.xml, and report.html with its csv/
exports.

Absolute times depend on the machine (and on who else is using it), so the figures
come with a baseline measured the same way in the same run: a plain pandas.read_csv of
every record file, in its own child (wall and peak RSS). The ratios to it are what
compares across machines. Targets on a 2-core machine: 3 s and 1 GB at 1,000,000
records, 8 GB at 10,000,000; the figures are printed against them (OVER or within),
never failed on. Swap in and out over the run (psutil) tell whether it swapped.
Exit code 1 only when the measurement failed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGETS = {1_000_000: (3.0, 1024.0), 10_000_000: (None, 8192.0)}  # records: (seconds, MB)
SLO = ["ws_delivery_latency{path:cross}: p(99)<250", "delivery_lost_eventual: count==0",
       "publish_duration_corrected: p(99)<1000"]


def measure(run_dir: Path) -> dict[str, float]:
    """Runs in a child: what `gauntlet report` does, step by step."""
    started = time.perf_counter()
    from reports.html import write_report
    from reports.records import load_run
    from reports.verdict import evaluate_run

    imported = time.perf_counter()
    run = load_run(run_dir)
    loaded = time.perf_counter()
    verdict = evaluate_run(run, SLO)
    checked = time.perf_counter()
    write_report(run, verdict)
    reported = time.perf_counter()
    return {
        "records": sum(len(getattr(run, k)) for k in ("http", "pub", "recv", "conn", "users")),
        "import_s": imported - started, "load_s": loaded - imported, "check_s": checked - loaded,
        "report_s": reported - checked, "total_s": reported - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "cpu_s": cpu_seconds(),
        "verdict": verdict.verdict.value, "checks": len(verdict.checks),
    }


def baseline(run_dir: Path) -> dict[str, float]:
    """Runs in a child: a plain pandas.read_csv of every record file of the run, the
    least any reader of these files pays on this machine, whatever its speed."""
    started = time.perf_counter()
    import pandas as pd

    imported = time.perf_counter()
    frames = [pd.read_csv(path) for path in sorted((run_dir / "records").rglob("*.csv"))]
    read = time.perf_counter()
    return {"import_s": imported - started, "read_s": read - imported, "total_s": read - started,
            "rows": sum(len(f) for f in frames),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "cpu_s": cpu_seconds()}


def cpu_seconds() -> float:
    """User + system CPU of this process: on a machine shared with other jobs the
    wall time waits for a core, the CPU time much less so."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(mode: str, run_dir: Path) -> dict[str, float]:
    proc = subprocess.run([sys.executable, __file__, f"--{mode}", str(run_dir)], capture_output=True, text=True,
                          timeout=3600, env=dict(os.environ, PYTHONHASHSEED="0"))
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def swap_io() -> tuple[int, int]:
    try:
        import psutil

        s = psutil.swap_memory()
        return int(s.sin), int(s.sout)
    except Exception:  # no psutil or no /proc/vmstat: say nothing rather than guess
        return (-1, -1)


def target_for(records: int) -> tuple[float | None, float | None]:
    nearest = min(TARGETS, key=lambda n: abs(n - records))
    return TARGETS[nearest] if 0.8 * nearest <= records <= 1.25 * nearest else (None, None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000, help="about how many records (default 1,000,000)")
    parser.add_argument("--keep", metavar="DIR", help="build the run here and keep it")
    parser.add_argument("--run", metavar="DIR", help="measure this run directory (built with --keep) instead")
    parser.add_argument("--repeat", type=int, default=1, help="measure N times (medians and ranges printed)")
    parser.add_argument("--measure", metavar="RUN_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", metavar="RUN_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure))))
        return 0
    if args.baseline:
        print(json.dumps(baseline(Path(args.baseline))))
        return 0

    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        build_s = None
        if args.run:
            run_dir = Path(args.run)
        else:
            from tests.synthetic import build_run, spec_for_records

            run_dir = Path(args.keep) if args.keep else Path(tmp) / "run"
            t = time.perf_counter()
            build_run(run_dir, spec_for_records(args.records))
            build_s = time.perf_counter() - t
        size_mb = sum(p.stat().st_size for p in (run_dir / "records").rglob("*.csv")) / 1e6
        sin, sout = swap_io()
        runs, bases = [], []
        try:
            for _ in range(max(1, args.repeat)):
                bases.append(child("baseline", run_dir))  # alternate, so both see the same machine
                runs.append(child("measure", run_dir))
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
        sin2, sout2 = swap_io()
    fig = runs[0]
    t_target, m_target = target_for(int(fig["records"]))

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    def span(rows: list[dict[str, float]], key: str, unit: str, fmt: str = "{:.2f}") -> str:
        values = sorted(r[key] for r in rows)
        text = fmt.format(statistics.median(values)) + f" {unit}"
        return text + (f" ({fmt.format(values[0])}-{fmt.format(values[-1])})" if len(values) > 1 else "")

    base_s, base_mb = med(bases, "total_s"), med(bases, "peak_rss_mb")
    total, peak = med(runs, "total_s"), med(runs, "peak_rss_mb")
    print(f"run: {fig['records']:,} records, {size_mb:.0f} MB of CSV in {run_dir}"
          + (f", built in {build_s:.1f} s" if build_s is not None else "") + f"; measured {len(runs)}x")
    print(f"  import   {span(runs, 'import_s', 's')}")
    print(f"  load     {span(runs, 'load_s', 's')}   {med(runs, 'load_s') / med(bases, 'read_s'):4.1f}x the read")
    print(f"  check    {span(runs, 'check_s', 's')}   ({fig['checks']} checks, verdict {fig['verdict']})")
    print(f"  report   {span(runs, 'report_s', 's')}")
    print(f"  total    {span(runs, 'total_s', 's')}   {total / base_s:4.1f}x baseline"
          + (f"   target {t_target:.0f} s: {'within' if total <= t_target else 'OVER'}" if t_target else ""))
    print(f"  CPU      {span(runs, 'cpu_s', 's')}   {med(runs, 'cpu_s') / med(bases, 'cpu_s'):4.1f}x baseline's")
    print(f"  peak RSS {span(runs, 'peak_rss_mb', 'MB', '{:.0f}')}   {peak / base_mb:4.1f}x baseline"
          + (f"   target {m_target:.0f} MB: {'within' if peak <= m_target else 'OVER'}" if m_target else ""))
    print(f"  baseline {span(bases, 'total_s', 's')} (CPU {med(bases, 'cpu_s'):.2f} s) incl. import {med(bases, 'import_s'):.2f} s, "
          f"peak {med(bases, 'peak_rss_mb'):.0f} MB (plain pandas.read_csv of the same files, own process)")
    swapped = "unknown" if sin < 0 else f"{(sin2 - sin) / 1e6:.0f} MB in, {(sout2 - sout) / 1e6:.0f} MB out"
    print(f"  swap     {swapped}; cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, "
          f"python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
