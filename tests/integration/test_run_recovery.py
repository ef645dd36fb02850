"""Recovery counts loss, on a real stack: `gauntlet run` with a Redis outage and a SUT
that skips its catch-up, so each replica misses what is published after Redis is back
until its subscription reconnects. What does arrive is fast again within a second or
two; the recovery must still wait for deliveries to be complete. The run is also
where the load is lengthened past the heal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow]

TIMELINE = """
name = "short-redis-outage"
description = "Redis unreachable from every replica for 8 seconds."

[[fault]]
kind = "down"
target = "redis"
at = "8s"
for = "8s"
"""
DEADLINE_S = 280


def run_gauntlet(args: list[str], cwd: Path, log: Path) -> int:
    """`gauntlet run` in its own session; interrupted like Ctrl-C (so it tears its stack
    down) if it overruns."""
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=cwd, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return proc.wait(DEADLINE_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            raise AssertionError(f"gauntlet run still going after {DEADLINE_S}s:\n{log.read_text()[-3000:]}")


@pytest.mark.timeout(DEADLINE_S + 90)
def test_loss_after_the_heal_delays_recovery_on_a_real_stack(tmp_path):
    timeline = tmp_path / "short-redis-outage.toml"
    timeline.write_text(TIMELINE)
    runs = tmp_path / "runs"
    log = tmp_path / "run.log"
    code = run_gauntlet(["run", "ramp", "--users", "40", "--duration", "30s", "--chaos", str(timeline),
                         "--defects", "no-catchup", "--runs-dir", str(runs), "--quiet", "--seed", "7",
                         "--locust-args", "--publish-rate 10 --user-pool 20"], ROOT, log)
    output = log.read_text(errors="replace")
    # 8 s + 8 s + the 35 s recovery needs: the 30 s asked for were not enough.
    assert "the load lasts 51s instead of 30s" in output, output[-3000:]
    assert code == 1, f"messages lost for good must fail the run:\n{output[-3000:]}"
    (run_dir,) = runs.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    (fault,) = summary["faults"]
    assert fault["lost_live_after_heal"] > 0, f"the replicas should miss messages after the heal: {fault}"
    assert fault["last_loss_after_heal_s"] > 0
    # Complete again only after the last miss, and recovered only when latency is back too.
    assert fault["delivery_recovered_s"] >= fault["last_loss_after_heal_s"] > 0, fault
    assert fault["latency_recovered_s"] is not None
    assert fault["recovered_s"] == max(fault["delivery_recovered_s"], fault["latency_recovered_s"])
    assert fault["observed_after_heal_s"] >= 30, "the load went on for the whole heal window"
    (check,) = [c for c in summary["checks"] if c["name"] == "recovery"]
    assert f"in {fault['recovered_s']:.1f} s" in check["summary"]
    assert f"{fault['lost_live_after_heal']:,} owed deliveries missed" in check["summary"]
    assert json.loads((run_dir / "run.json").read_text())["load_note"].startswith("the load lasts 51s")
