"""The verdict of a run (DESIGN contract 4): `evaluate_run` runs every check
(reports/check.py says what a check is), composes their verdicts by taking the worst,
writes summary.json and junit.xml, and gives the exit code (EXIT_CODES): 0 when every
check passed, 1 when any failed, 3 when none failed but one could not be judged (a run
that checked nothing, e.g. no publishes, must not pass a CI gate).
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np

from reports import delivery, faults, history, isolation, replicas, security, shutdown, thresholds
from reports.check import EXIT_CODES, CheckResult, Verdict, compose, run_check
from reports.delivery import DeliveryOptions
from reports.measurement import assess
from reports.order import describe
from reports.records import RunData, load_run, write_atomic
from reports.resources import summarize
from reports.series import Percentiles
from reports.thresholds import ThresholdResult

SUMMARY_VERSION = 1


@dataclass
class RunVerdict:
    """The outcome of evaluating one run."""

    run_dir: Path
    verdict: Verdict
    checks: list[CheckResult]
    slo: list[ThresholdResult]
    exit_code: int
    summary_path: Path
    junit_path: Path
    # What the verdict should say beside the checks: a component at its limit, the
    # machine's conditions (reports/resources.py).
    notes: list[str] = field(default_factory=list)
    # Whether the load generator kept up (reports/measurement.py): a Measurement.
    measurement: Any = None

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.verdict is Verdict.FAIL]


def evaluate_run(run_dir: str | Path | RunData, slo: Sequence[str] | None = None, *,
                 use_default_slo: bool = True, options: DeliveryOptions | None = None,
                 write: bool = True) -> RunVerdict:
    """Run every check on a run directory; write summary.json and junit.xml (unless
    `write` is false, as when a comparison only reads runs).

    `slo` adds threshold expressions on top of the defaults and the run's own (run.json
    "slo"); for the same metric, tags and aggregation the later source wins.
    Raises RecordError (unreadable run) and ThresholdError (bad expression) before any
    check runs: those are the user's mistakes, not verdicts.
    """
    run = run_dir if isinstance(run_dir, RunData) else load_run(run_dir)
    targets = thresholds.resolve(run.meta.slo, slo or (), use_defaults=use_default_slo)
    checks: list[tuple[str, Callable[[RunData], CheckResult | Sequence[CheckResult]]]] = [
        ("records", history.check),
        ("faults", faults.check),
        ("delivery", lambda r: delivery.check(r, options)),
        ("recovery", lambda r: delivery.check_recovery(r, options)),
        *([("security", security.check)] if security.applies(run) else []),
        *([("isolation", lambda r: isolation.check(r, options))] if isolation.applies(run) else []),
        *([("shutdown", shutdown.check)] if shutdown.applies(run) else []),
    ]
    if replicas.recorded(run):  # otherwise nothing supervised them: run_notes says so
        checks.append(("replicas", replicas.check))
    checks.append(("slo", lambda r: thresholds.check(r, targets, options)))
    results: list[CheckResult] = []
    for name, fn in checks:
        results.extend(run_check(name, fn, run))
    slo_rows = run.cache.pop(thresholds.SLO_CACHE_KEY, [])
    verdict = compose(results)
    exit_code = EXIT_CODES[verdict]
    summary_path = run.run_dir / "summary.json"
    junit_path = run.run_dir / "junit.xml"
    outcome = RunVerdict(run.run_dir, verdict, results, slo_rows, exit_code, summary_path, junit_path,
                         notes=run_notes(run, options), measurement=_measurement(run))
    if write:
        write_summary(run, outcome, options)
        write_junit(run, outcome)
    return outcome


def _measurement(run: RunData) -> Any:
    try:
        return assess(run)
    except Exception:  # validity that cannot be told is not recorded; the checks still stand
        return None


def run_notes(run: RunData, options: DeliveryOptions | None = None) -> list[str]:
    """The verdict's notes: what sat at its limit and the machine's conditions."""
    notes = [] if replicas.recorded(run) else [replicas.NOT_RECORDED]
    if not security.applies(run):
        notes.append(security.NOT_APPLICABLE)
    try:
        return notes + summarize(run, (options or DeliveryOptions()).heal_window_s).notes()
    except Exception as exc:  # notes must never take the evaluation down
        return notes + [f"resource summary failed: {type(exc).__name__}: {exc}"]


def write_summary(run: RunData, outcome: RunVerdict, options: DeliveryOptions | None = None) -> Path:
    a = delivery.analyze(run, options) if ("delivery", options or delivery.DeliveryOptions()) in run.cache else None
    meta = run.meta
    doc: dict[str, Any] = {
        "version": SUMMARY_VERSION,
        "verdict": outcome.verdict.value,
        "exit_code": outcome.exit_code,
        "run": {
            "name": meta.name, "dir": str(run.run_dir), "seed": meta.seed, "start": run.t0, "end": run.t_end,
            "duration_s": run.duration, "versions": meta.versions, "stack": meta.stack,
            "scenario": meta.scenario, "timeline": meta.timeline, "argv": list(meta.argv),
            "workers": list(run.workers),
        },
        "checks": [c.to_dict() for c in outcome.checks],
        "slo": [r.to_dict() for r in outcome.slo],
        "delivery": None,
        "faults": [],
        "warnings": list(run.warnings),
        "measurement": outcome.measurement.to_dict() if outcome.measurement is not None else None,
        "notes": list(outcome.notes),
        "resources": None,
        "replicas": _replicas_doc(run),
    }
    try:
        resources = summarize(run, (options or delivery.DeliveryOptions()).heal_window_s)
        doc["resources"] = resources.to_dict() if resources.sampled else None
    except Exception:  # run_notes already said why
        pass
    if a is not None:
        doc["delivery"] = {
            "counts": a.counts.to_dict(),
            "by_phase": a.by_phase.reset_index().to_dict(orient="records"),
            "matrix": a.matrix.to_dict(orient="records"),
            "latency_ms": latency_summary(a.latency),
            "steady_p99_ms": a.steady_p99_ms,
            "attribution": a.attribution.to_dict() if a.attribution is not None else None,
            "order": _order_doc(a),
            "notes": a.notes,
        }
        doc["faults"] = [r.to_dict() for r in a.recovery]
    else:
        doc["faults"] = [{"fault_id": f.id, "kind": f.kind, "target": f.target, "start": f.start,
                          "end": f.end, "outcome": f.outcome} for f in run.faults]
    return write_atomic(outcome.summary_path, json.dumps(jsonable(doc), indent=2, allow_nan=False) + "\n")


def _replicas_doc(run: RunData) -> dict[str, Any] | None:
    """Every replica exit and what asked for it; None when the run did not record them."""
    try:
        life = replicas.lifecycle(run)
    except Exception:  # the replicas check already says why
        return None
    if not life.recorded:
        return None
    return {"replicas": list(life.replicas), "exits": [e.to_dict() for e in life.exits],
            "unasked": len(life.unasked)}


def _order_doc(a: Any) -> dict[str, Any]:
    """Which orders were checked, their counts per phase, subscriber and replica pair."""
    if a.order is None:
        return {}
    return {"summary": describe(a.order.summaries),
            "orders": {k: v.to_dict() for k, v in a.order.summaries.items()},
            "by_pair": a.order.by_pair.to_dict(orient="records")}


def latency_summary(latency: Any) -> dict[str, dict[str, float | int | None]]:
    """p50/p95/p99/max of delivery latency, overall and by path (same/cross instance)."""
    groups = [("all", latency["latency_ms"])]
    for path in ("same", "cross"):
        groups.append((path, latency.loc[latency["path"] == path, "latency_ms"]))
    return {name: Percentiles.of(values.to_numpy(dtype="float64")).to_dict() for name, values in groups}


def write_junit(run: RunData, outcome: RunVerdict) -> Path:
    """One testcase per check: fail → <failure>, unknown → <skipped>."""
    suite = ET.Element("testsuite", {
        "name": f"gauntlet.{run.meta.name or run.run_dir.name}",
        "tests": str(len(outcome.checks)),
        "failures": str(sum(c.verdict is Verdict.FAIL for c in outcome.checks)),
        "skipped": str(sum(c.verdict is Verdict.UNKNOWN for c in outcome.checks)),
        "errors": "0",
        "time": f"{sum(c.seconds for c in outcome.checks):.3f}",
    })
    for check in outcome.checks:
        case = ET.SubElement(suite, "testcase", {"classname": "gauntlet.checks", "name": check.name,
                                                 "time": f"{check.seconds:.3f}"})
        if check.verdict is Verdict.FAIL:
            node = ET.SubElement(case, "failure", {"message": check.summary, "type": "fail"})
            node.text = json.dumps(jsonable(check.details), indent=1)[:20000]
        elif check.verdict is Verdict.UNKNOWN:
            ET.SubElement(case, "skipped", {"message": f"unknown: {check.summary}"})
        out = ET.SubElement(case, "system-out")
        out.text = check.summary
    root = ET.Element("testsuites", {"name": "gauntlet", "tests": suite.get("tests", "0"),
                                     "failures": suite.get("failures", "0")})
    root.append(suite)
    ET.indent(root)
    path = outcome.junit_path
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars unwrapped, NaN/inf as null, enums as values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, Path):
        return str(value)
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
    except ImportError:  # pragma: no cover
        pass
    return str(value)
