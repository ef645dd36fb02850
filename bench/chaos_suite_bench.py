"""Wall time of the full chaos suite (`pytest -m chaos`), against its floor.

Run: .venv/bin/python bench/chaos_suite_bench.py [-- extra pytest args]

The floor, measured from the same run: the seconds of load the tests planned
(`planned_duration_s` in each run.json). The ratio wall / load says what stack
bring-up, teardown, checks and reports add. Target: the whole suite <= 10 minutes on
a 2-core machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        runs, junit = Path(tmp) / "runs", Path(tmp) / "junit.xml"
        t0 = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-m", "chaos", "-q", "-p", "no:cacheprovider",
             "--gauntlet-runs-dir", str(runs), "--junitxml", str(junit), *argv],
            cwd=ROOT, timeout=3600,
        )
        wall = time.monotonic() - t0
        tests = ET.parse(junit).getroot().iter("testcase")
        times = sorted(((float(t.get("time", 0)), t.get("name")) for t in tests), reverse=True)
        planned = 0.0
        for meta in runs.glob("*/run.json"):
            planned += float(json.loads(meta.read_text()).get("planned_duration_s") or 0)
    print(f"\nchaos suite: {len(times)} tests, wall {wall / 60:.1f} min (target <= 10 min), exit {done.returncode}")
    print(f"  load planned in this process's runs: {planned / 60:.1f} min; wall / load = {wall / max(planned, 1):.2f}x")
    print("  (the negative controls run their tests in child processes, with their own runs dirs)")
    for seconds, name in times[:8]:
        print(f"  {seconds:6.1f}s  {name}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
