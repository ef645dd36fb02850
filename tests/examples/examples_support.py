"""Driving an example the way its user would: `gauntlet run --config examples/X/gauntlet.toml`
in a subprocess, then reading the run's summary.json."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
OUTAGE = EXAMPLES / "redis-outage.toml"
# One short run each, so two examples stay within a few minutes of the suite.
BASELINE_STAGES = "4s:30,12s:30"
OUTAGE_STAGES = "4s:30,8s:30"  # lengthened by gauntlet run past the heal + the recovery window
LOAD_ARGS = "--user-pool 20"
DEADLINE_S = 240


@dataclass(frozen=True)
class ExampleRun:
    code: int
    output: str
    run_dir: Path
    summary: dict[str, Any]

    def check(self, name: str) -> dict[str, Any]:
        for check in self.summary["checks"]:
            if check["name"] == name:
                return check
        raise AssertionError(f"no {name!r} check in {[c['name'] for c in self.summary['checks']]}")

    @property
    def delivery(self) -> dict[str, Any]:
        return self.summary["delivery"]

    def replica_log(self, name: str) -> str:
        return (self.run_dir / "logs" / f"{name}.log").read_text(errors="replace")


def run_example(example: str, runs: Path, *args: str, seed: int = 7) -> ExampleRun:
    """`gauntlet run ramp --config examples/<example>/gauntlet.toml ...` from the repo root,
    in its own session; interrupted like Ctrl-C (so it tears its stack down) if it
    overruns its deadline."""
    runs.mkdir(parents=True, exist_ok=True)
    log = runs / f"{example}-{len(list(runs.iterdir()))}.log"
    argv = [sys.executable, "-m", "harness.cli", "run", "ramp", "--config", str(EXAMPLES / example / "gauntlet.toml"),
            "--replicas", "3", "--broker", "redis", "--runs-dir", str(runs / "runs"), "--quiet",
            "--seed", str(seed), "--locust-args", LOAD_ARGS, *args]
    before = set((runs / "runs").iterdir()) if (runs / "runs").exists() else set()
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(DEADLINE_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            raise AssertionError(f"gauntlet run still going after {DEADLINE_S}s:\n{log.read_text()[-3000:]}")
    output = log.read_text(errors="replace")
    new = sorted(set((runs / "runs").iterdir()) - before) if (runs / "runs").exists() else []
    assert len(new) == 1, f"expected one run directory, got {new} (exit {code}):\n{output[-3000:]}"
    summary_file = new[0] / "summary.json"
    assert summary_file.exists(), f"no summary.json (exit {code}):\n{output[-3000:]}"
    return ExampleRun(code, output, new[0], json.loads(summary_file.read_text()))


def pip_install(requirements: Path, timeout: float = 180.0) -> str | None:
    """Install an example's Python requirements into this interpreter; None when done,
    else the one line saying why not."""
    try:
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(requirements)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"pip install -r {requirements} did not finish within {timeout:g}s"
    if proc.returncode != 0:
        return f"pip install -r {requirements} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}"
    return None


def every_pair(matrix: list[dict[str, Any]], replicas: list[str], phase: str = "steady") -> set[tuple[str, str]]:
    """The (publisher replica, subscriber replica) pairs of `phase` with owed deliveries."""
    return {(row["origin"], row["sub_instance"]) for row in matrix
            if row["phase"] == phase and row["expected_live"] > 0
            and row["origin"] in replicas and row["sub_instance"] in replicas}


# npm's words for a registry it could not reach (its own error codes, or Node's).
UNREACHABLE = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENETUNREACH",
               "EHOSTUNREACH", "network request to", "request to https://")


def npm_install(directory: Path, timeout: float = 240.0) -> str | None:
    """`npm install` from the committed package-lock.json; None when done, else the one
    line that says the registry is unreachable (a skip). Any other failure raises."""
    import shutil

    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        return "node and npm are not installed"
    argv = [npm, "install", "--no-audit", "--no-fund", "--prefer-offline", "--fetch-timeout=30000",
            "--fetch-retries=1"]
    try:
        proc = subprocess.run(argv, cwd=directory, capture_output=True, text=True, timeout=timeout,
                              start_new_session=True)
    except subprocess.TimeoutExpired:
        return f"npm install in {directory.name} did not finish within {timeout:g}s (registry unreachable?)"
    if proc.returncode == 0:
        return None
    text = proc.stdout + proc.stderr
    if any(word in text for word in UNREACHABLE):
        line = next((l for l in text.splitlines() if any(w in l for w in UNREACHABLE)), "")
        return f"npm registry unreachable: {line.strip()[:200]}"
    raise AssertionError(f"npm install failed in {directory}:\n{text[-3000:]}")


# What every example must show, whichever stack it is.
REPLICAS = ["r1", "r2", "r3"]


def assert_baseline_passes(run: ExampleRun) -> None:
    assert run.code == 0, run.output[-3000:]
    assert run.summary["verdict"] == "pass"
    counts = run.delivery["counts"]
    assert counts["expected_live"] > 200, counts
    assert counts["lost_live"] == counts["lost_eventual"] == 0, counts
    assert counts["subscribers"] > 0 and counts["acknowledged"] == counts["publishes"], counts
    assert run.check("replicas")["verdict"] == "pass", run.check("replicas")


def assert_matrix_names_every_replica(run: ExampleRun) -> None:
    attribution = run.delivery["attribution"]
    assert attribution["available"], attribution
    assert attribution["replicas"] == REPLICAS, attribution
    assert attribution["connections_named"] == attribution["connections"] > 0, attribution
    assert attribution["publishes_named"] == attribution["publishes"] > 0, attribution
    pairs = every_pair(run.delivery["matrix"], REPLICAS)
    assert pairs == {(a, b) for a in REPLICAS for b in REPLICAS}, pairs
    latency = run.delivery["latency_ms"]
    assert latency["same"]["count"] > 0 and latency["cross"]["count"] > 0, latency


def assert_real_time_order_checked(run: ExampleRun) -> None:
    order = run.delivery["order"]
    assert order["summary"].startswith("order: real-time 0 late of"), order["summary"]
    realtime = order["orders"]["realtime"]
    assert realtime["checked"] and realtime["required"], realtime
    assert realtime["judged"] > 100 and realtime["violations"] == 0, realtime
    (slo,) = [c for c in run.summary["checks"] if c["name"].startswith("slo delivery_out_of_order")]
    assert slo["verdict"] == "pass" and "real-time order" in slo["summary"], slo
    assert order["summary"] in " ".join(run.output.split()), run.output[-3000:]


def assert_outage_fails_with_loss_after_heal(run: ExampleRun) -> dict[str, Any]:
    """The Redis outage fails on delivery, and its recovery row counts what was lost
    after the heal; returns the fault's row."""
    assert run.code == 1, run.output[-3000:]
    assert run.summary["verdict"] == "fail"
    assert run.check("delivery")["verdict"] == "fail", run.check("delivery")
    assert run.delivery["counts"]["lost_eventual"] > 0, run.delivery["counts"]
    (fault,) = run.summary["faults"]
    assert (fault["kind"], fault["target"], fault["outcome"]) == ("down", "redis", "ok"), fault
    assert fault["lost_live_inside"] > 0, fault
    assert fault["lost_live_after_heal"] > 0 and fault["last_loss_after_heal_s"] > 0, fault
    assert fault["delivery_recovered_s"] >= fault["last_loss_after_heal_s"], fault
    assert "after the heal" in run.check("recovery")["summary"], run.check("recovery")
    if fault["status"] == "recovered":
        assert fault["recovered_s"] >= fault["delivery_recovered_s"], fault
    return fault
