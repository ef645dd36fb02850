"""Did one step of a capacity search hold? Judged by the run's own verdict.

A step is a plain `gauntlet run`, checked with the same thresholds as any run (the
defaults, the scenario's, gauntlet.toml's and --slo), so "capacity" means the highest
load at which every check still passes, not a number of its own. The step:

- broke: a check failed (a latency target, delivery, ...);
- generator: nothing failed, but the load generator could not keep up
  (reports/measurement.py): the load was not offered as planned, so the step neither
  held nor broke, and the search stops there (capacity is at least the last held);
- held: otherwise (checks that could not be judged are listed, not counted).

It also keeps what the run's resource summary says sat at its limit, the CPU per
component and the throughput, for the report.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from reports.capacity_plan import BROKE, GENERATOR, HELD, CapacityStep
from reports.records import RecordError, load_run
from reports.series import acknowledged


def evaluate_step(run_dir: Path, *, replicas: int, level: float, seconds: float, label_dir: str) -> CapacityStep:
    summary = _summary(run_dir)
    checks = summary.get("checks") or []
    failed = tuple(c["name"] for c in checks if c.get("verdict") == "fail")
    unknown = tuple(c["name"] for c in checks if c.get("verdict") == "unknown")
    measurement = summary.get("measurement") or {}
    resources = summary.get("resources") or {}
    if failed:
        outcome = BROKE
        reason = "; ".join(_failed_line(c) for c in checks if c.get("verdict") == "fail")
    elif measurement.get("valid") is False:
        outcome = GENERATOR
        reason = "the load generator could not keep up: " + "; ".join(measurement.get("reasons") or [])
    else:
        outcome = HELD
        reason = "every check passed" + (f" ({len(unknown)} could not be judged)" if unknown else "")
    components = resources.get("components") or []
    saturated = tuple(c["component"] for c in sorted(components, key=lambda c: -c.get("at_limit_share", 0))
                      if c.get("saturated"))
    machine, other = resources.get("machine") or {}, resources.get("other") or {}
    figures = _figures(run_dir)
    latency = ((summary.get("delivery") or {}).get("latency_ms") or {}).get("all") or {}
    http_p95 = next((r.get("observed") for r in summary.get("slo") or []
                     if r.get("metric") == "http_req_duration" and not r.get("tags") and r.get("aggregation") == "p(95)"),
                    None)
    return CapacityStep(
        replicas=replicas, level=level, outcome=outcome, reason=reason, run_dir=label_dir, seconds=seconds,
        failed=failed, unknown=unknown, measurement=measurement.get("headline") or "",
        bottleneck=resources.get("bottleneck") or "not sampled", saturated=saturated,
        cpu={c["component"]: round(c.get("cpu_mean") or 0.0, 3) for c in components},
        machine_cpu=machine.get("cpu_mean"), other_cpu=other.get("cpu_mean"),
        delivery_p99_ms=latency.get("p99"), http_p95_ms=http_p95, **figures)


def _summary(run_dir: Path) -> dict:
    try:
        return json.loads((Path(run_dir) / "summary.json").read_text())
    except (OSError, ValueError) as exc:
        raise RecordError(f"{run_dir}: no readable summary.json ({exc})") from None


def _failed_line(check: dict) -> str:
    summary = str(check.get("summary") or "")
    return f"{check['name']}: {summary[:160]}" if summary else str(check["name"])


def _figures(run_dir: Path) -> dict:
    """Peak open sockets, acknowledged publishes and deliveries per second of the load."""
    run = load_run(run_dir)
    lo, hi = run.load_span()
    span = max(1.0, hi - lo)
    users = run.users
    sockets = 0
    if len(users):
        # Each load process samples its own sockets every second: add them per second.
        per_second = users.groupby(np.floor(users["ts"].to_numpy(dtype="float64")))["sockets"].sum()
        sockets = int(per_second.max()) if len(per_second) else 0
    acked = int(acknowledged(run.pub).sum()) if len(run.pub) else 0
    return {"sockets_peak": sockets, "acked_per_s": round(acked / span, 2),
            "deliveries_per_s": round(len(run.recv) / span, 2)}
