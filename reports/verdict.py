"""Verdicts (DESIGN contract 4): pass < unknown < fail, composed by taking the worst.

A check is a function `check(run) -> CheckResult`. A check that raises does not crash
the run's evaluation: it yields `unknown` with the reason, because a checker bug says
nothing about the system under test (Jepsen's rule). `evaluate_run` runs them all,
writes summary.json and junit.xml, and gives the exit code: 1 when any check fails.
"""

from __future__ import annotations

import enum
import json
import math
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

import numpy as np

from reports.records import write_atomic
from reports.series import Percentiles

if TYPE_CHECKING:
    from reports.delivery import DeliveryOptions
    from reports.records import RunData
    from reports.thresholds import ThresholdResult

SUMMARY_VERSION = 1


class Verdict(enum.Enum):
    PASS = "pass"
    UNKNOWN = "unknown"
    FAIL = "fail"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __lt__(self, other: Verdict) -> bool:
        if not isinstance(other, Verdict):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: Verdict) -> bool:
        if not isinstance(other, Verdict):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: Verdict) -> bool:
        if not isinstance(other, Verdict):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: Verdict) -> bool:
        if not isinstance(other, Verdict):
            return NotImplemented
        return self.rank >= other.rank


_RANK = {Verdict.PASS: 0, Verdict.UNKNOWN: 1, Verdict.FAIL: 2}


@dataclass(frozen=True)
class CheckResult:
    name: str
    verdict: Verdict
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "verdict": self.verdict.value, "summary": self.summary,
                "seconds": round(self.seconds, 4), "details": self.details}


Check = Callable[["RunData"], CheckResult]


def compose(verdicts: Iterable[Verdict | CheckResult]) -> Verdict:
    """The worst verdict; no checks at all is `unknown` (nothing was shown to hold)."""
    worst: Verdict | None = None
    for item in verdicts:
        v = item.verdict if isinstance(item, CheckResult) else item
        worst = v if worst is None or v > worst else worst
    return worst if worst is not None else Verdict.UNKNOWN


def run_check(name: str, check: Callable[[RunData], CheckResult | Sequence[CheckResult]],
              run: RunData) -> list[CheckResult]:
    """Run one check; an exception becomes an `unknown` result naming the error."""
    started = time.perf_counter()
    try:
        result = check(run)
    except Exception as exc:  # a checker crash must not take the evaluation down
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
        return [CheckResult(name, Verdict.UNKNOWN, f"check crashed: {type(exc).__name__}: {exc}{where}",
                            {"error": f"{type(exc).__name__}: {exc}",
                             "traceback": traceback.format_exception(exc)[-6:]},
                            time.perf_counter() - started)]
    results = [result] if isinstance(result, CheckResult) else list(result)
    elapsed = time.perf_counter() - started
    return [CheckResult(r.name, r.verdict, r.summary, r.details, r.seconds or elapsed / max(1, len(results)))
            for r in results]


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
    # Checkers import Verdict and CheckResult from here, hence the late imports.
    from reports import delivery, faults, history, thresholds
    from reports.records import RunData, load_run

    run = run_dir if isinstance(run_dir, RunData) else load_run(run_dir)
    targets = thresholds.resolve(run.meta.slo, slo or (), use_defaults=use_default_slo)
    checks: list[tuple[str, Callable[[RunData], CheckResult | Sequence[CheckResult]]]] = [
        ("records", history.check),
        ("faults", faults.check),
        ("delivery", lambda r: delivery.check(r, options)),
        ("recovery", lambda r: delivery.check_recovery(r, options)),
        ("slo", lambda r: thresholds.check(r, targets, options)),
    ]
    results: list[CheckResult] = []
    for name, fn in checks:
        results.extend(run_check(name, fn, run))
    slo_rows = run.cache.pop(thresholds.SLO_CACHE_KEY, [])
    verdict = compose(results)
    exit_code = 1 if verdict is Verdict.FAIL else 0
    summary_path = run.run_dir / "summary.json"
    junit_path = run.run_dir / "junit.xml"
    outcome = RunVerdict(run.run_dir, verdict, results, slo_rows, exit_code, summary_path, junit_path)
    if write:
        write_summary(run, outcome, options)
        write_junit(run, outcome)
    return outcome


def write_summary(run: RunData, outcome: RunVerdict, options: DeliveryOptions | None = None) -> Path:
    from reports import delivery

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
    }
    if a is not None:
        doc["delivery"] = {
            "counts": a.counts.to_dict(),
            "by_phase": a.by_phase.reset_index().to_dict(orient="records"),
            "matrix": a.matrix.to_dict(orient="records"),
            "latency_ms": latency_summary(a.latency),
            "steady_p99_ms": a.steady_p99_ms,
            "notes": a.notes,
        }
        doc["faults"] = [r.to_dict() for r in a.recovery]
    else:
        doc["faults"] = [{"fault_id": f.id, "kind": f.kind, "target": f.target, "start": f.start,
                          "end": f.end, "outcome": f.outcome} for f in run.faults]
    return write_atomic(outcome.summary_path, json.dumps(jsonable(doc), indent=2, allow_nan=False) + "\n")


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
