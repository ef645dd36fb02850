"""Check + report time and peak memory for a synthetic run of about a million records.

    .venv/bin/python bench/report_bench.py [--records 1000000] [--keep DIR]

Builds a seeded synthetic run (reports/synthetic.py: 400 subscribers over 3 replicas,
a partition and a kill, every anomaly injected), then measures, in a fresh child
process so that the peak RSS is the checker's alone: reading the run, evaluating every
check (delivery, recovery, latency targets) with summary.json and junit.xml, and
writing report.html with its csv/ exports. Budget on a 2-core machine: 15 s, 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BUDGET_S = 15.0
BUDGET_MB = 2048.0
SLO = ["ws_delivery_latency{path:cross}: p(99)<250", "delivery_lost_eventual: count==0",
       "publish_duration_corrected: p(99)<1000"]


def measure(run_dir: Path) -> dict[str, float]:
    """Runs in the child: the figures for one run directory."""
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
    records = sum(len(getattr(run, k)) for k in ("http", "pub", "recv", "conn", "users"))
    return {
        "records": records, "import_s": imported - started, "load_s": loaded - imported,
        "check_s": checked - loaded, "report_s": reported - checked, "total_s": reported - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "verdict": verdict.verdict.value, "checks": len(verdict.checks),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000, help="about how many records (default 1,000,000)")
    parser.add_argument("--keep", metavar="DIR", help="build the run here and keep it")
    parser.add_argument("--measure", metavar="RUN_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure))))
        return 0

    from reports.synthetic import build_run, spec_for_records

    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        run_dir = Path(args.keep) if args.keep else Path(tmp) / "run"
        t = time.perf_counter()
        built = build_run(run_dir, spec_for_records(args.records))
        build_s = time.perf_counter() - t
        size_mb = sum(p.stat().st_size for p in (run_dir / "records").rglob("*.csv")) / 1e6
        child = subprocess.run([sys.executable, __file__, "--measure", str(run_dir)], capture_output=True,
                               text=True, timeout=600, env=dict(os.environ, PYTHONHASHSEED="0"))
        if child.returncode != 0:
            print(child.stderr, file=sys.stderr)
            return 1
        figures = json.loads(child.stdout.strip().splitlines()[-1])
    t_ok = figures["total_s"] <= BUDGET_S
    m_ok = figures["peak_rss_mb"] <= BUDGET_MB
    print(f"synthetic run: {figures['records']:,} records ({', '.join(f'{k} {v:,}' for k, v in built.truth.records.items())}),"
          f" {size_mb:.0f} MB of CSV, built in {build_s:.1f} s")
    print(f"  import   {figures['import_s']:6.2f} s")
    print(f"  load     {figures['load_s']:6.2f} s")
    print(f"  check    {figures['check_s']:6.2f} s   ({figures['checks']} checks, verdict {figures['verdict']})")
    print(f"  report   {figures['report_s']:6.2f} s")
    print(f"  total    {figures['total_s']:6.2f} s   budget {BUDGET_S:.0f} s   {'ok' if t_ok else 'OVER'}")
    print(f"  peak RSS {figures['peak_rss_mb']:6.0f} MB  budget {BUDGET_MB:.0f} MB {'ok' if m_ok else 'OVER'}")
    print(f"  cores {os.cpu_count()}, python {sys.version.split()[0]}")
    return 0 if t_ok and m_ok else 1


if __name__ == "__main__":
    sys.exit(main())
