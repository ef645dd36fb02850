"""The numbers behind a broker comparison: one column per broker, pooled over repeats.

`compare(compare_dir)` reads compare.json (reports/compare_plan.py), evaluates every
run the way `gauntlet report` does (without rewriting its summary.json) and reduces
each broker's runs to one `BrokerFigures`: throughput, publish and delivery latency
percentiles over every raw sample of every repeat, delivery counts summed over
repeats, what each fault did (loss, late deliveries, recovery time), the verdict of
every check and latency target (the worst over repeats), and the rate search's
outcome. `write_figures` stores them as figures.json for tools and the bench.

Times are aligned on each run's load start (its first record), not on run.json's
start, which includes bringing the stack up: the same timeline then lands at the same
second in every run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reports import delivery, series
from reports.compare_plan import ComparePlan, RateResult, read_plan
from reports.delivery import DeliveryAnalysis, DeliveryOptions
from reports.phases import STEADY
from reports.records import FaultWindow, RunData, load_run, write_atomic
from reports.series import Percentiles
from reports.thresholds import format_value
from reports.check import Verdict, compose
from reports.verdict import RunVerdict, evaluate_run, jsonable

FIGURES_FILE = "figures.json"
FIGURES_VERSION = 1
SLOWED_MS = 50.0


@dataclass
class ComparedRun:
    """One run of a comparison, evaluated; `label` tells repeats of a broker apart."""

    broker: str
    label: str
    run: RunData
    verdict: RunVerdict
    analysis: DeliveryAnalysis | None


@dataclass(frozen=True)
class FaultEffect:
    """What one fault of the timeline did to one broker, over all its repeats."""

    fault_id: str
    label: str  # "down redis"
    start_s: float  # seconds after the load started (first repeat)
    seconds: float  # how long it lasted
    owed_live: int
    lost_live: int
    lost_eventual: int
    late: int  # live deliveries of messages sent inside the window slower than late_after
    publishes: int  # publishes sent inside the window
    publish_failed: int  # of those, failed or unknown
    inside: Percentiles  # delivery latency of messages sent inside the window
    steady_p99_ms: float | None
    first_delivery_s: float | None  # heal -> first live delivery (worst repeat)
    recovered_s: float | None  # heal -> deliveries complete and p99 back within 1.5x steady (worst repeat)
    status: str  # worst over repeats: recovered < not observed < slow < not recovered < not healed

    @property
    def slowed(self) -> bool:
        """Delivery inside the window clearly slower than in steady state: half as slow
        again and by more than SLOWED_MS (20 ms against 35 ms is nobody's problem)."""
        return (self.inside.p99 is not None and self.steady_p99_ms is not None
                and self.inside.p99 > 1.5 * self.steady_p99_ms and self.inside.p99 > self.steady_p99_ms + SLOWED_MS)

    @property
    def affected(self) -> bool:
        return bool(self.lost_live or self.lost_eventual or self.late or self.publish_failed or self.slowed)


@dataclass(frozen=True)
class TargetRow:
    """One latency target (or check) for one broker: the worst verdict over repeats."""

    name: str
    verdict: Verdict
    observed: tuple[str, ...]  # per repeat


@dataclass(frozen=True)
class Mechanism:
    """How the reference SUT's replicas got back what they missed, from their logs."""

    catchups: int = 0  # catch-ups from Postgres that delivered something
    caught_up: int = 0  # notifications those delivered
    resumes: int = 0  # stream reads resumed from the last entry after a drop
    gaps: int = 0  # resumes that found a gap (trimmed or lost entries)


@dataclass
class BrokerFigures:
    broker: str
    run_dirs: list[str]
    verdict: Verdict
    load_seconds: float
    publishes: int
    acknowledged: int
    throughput_per_s: float  # acknowledged publishes per second of load
    deliveries_per_s: float  # frames received per second of load
    publish: Percentiles  # ok publishes, ts_ack - ts_sent (ms)
    delivery: Percentiles  # live first deliveries, recv - sent (ms)
    delivery_steady: Percentiles  # the same, for messages sent outside fault and heal windows
    delivery_p99_per_repeat: list[float | None]
    expected_live: int
    lost_live: int
    lost_eventual: int
    duplicated: int
    misrouted: int
    unexpected: int
    late: int
    faults: list[FaultEffect]
    checks: list[TargetRow]  # records, faults, delivery, recovery
    targets: list[TargetRow]  # latency targets
    mechanism: Mechanism
    rate: RateResult | None = None

    @property
    def safe(self) -> bool:
        """Nothing lost for good, nothing duplicated, misrouted or invented."""
        return not (self.lost_eventual or self.duplicated or self.misrouted or self.unexpected)

    @property
    def failed_targets(self) -> list[str]:
        return [t.name for t in self.targets if t.verdict is Verdict.FAIL]

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["verdict"] = self.verdict.value
        for rows in ("checks", "targets"):
            for row in doc[rows]:
                row["verdict"] = row["verdict"].value
        doc["safe"] = self.safe
        doc["failed_targets"] = self.failed_targets
        doc["faults"] = [{**f, "affected": e.affected, "slowed": e.slowed} for f, e in zip(doc["faults"], self.faults)]
        return doc


@dataclass
class Comparison:
    directory: Path
    plan: ComparePlan
    brokers: list[BrokerFigures]
    runs: list[ComparedRun]  # every run, labelled "broker" or "broker #k"
    options: DeliveryOptions
    notes: list[str] = field(default_factory=list)


def compare(compare_dir: str | Path, slo: Sequence[str] | None = None, *, use_default_slo: bool = True,
            options: DeliveryOptions | None = None) -> Comparison:
    """RecordError when compare.json or a run cannot be read; a broker without a
    finished run is left out (the plan's notes say so)."""
    directory = Path(compare_dir)
    plan = read_plan(directory)
    options = options or DeliveryOptions()
    # Each run's own targets are in its run.json already; `slo` adds to them.
    slo = list(slo or ())
    runs: list[ComparedRun] = []
    figures: list[BrokerFigures] = []
    notes = list(plan.notes)
    for broker in plan.brokers:
        mine = []
        for entry in plan.runs_of(broker):
            label = broker if plan.repeats == 1 else f"{broker} #{entry.repeat}"
            r = compared_run(load_run(directory / entry.run_dir), broker, label, slo,
                             use_default_slo=use_default_slo, options=options)
            if r.analysis is None:  # the run's own report says unknown; here it cannot count
                notes.append(f"{label}: left out, its {r.run.warnings[-1]}")
                continue
            mine.append(r)
        if not mine:
            notes.append(f"{broker}: no finished run to compare")
            continue
        runs.extend(mine)
        rate = next((r for r in plan.rate if r.broker == broker), None)
        figures.append(broker_figures(broker, mine, options, rate, directory))
    return Comparison(directory, plan, figures, runs, options, notes)


def compared_run(run: RunData, broker: str, label: str, slo: Sequence[str] | None, *, use_default_slo: bool = True,
                 options: DeliveryOptions | None = None) -> ComparedRun:
    """Evaluate a run for a comparison, leaving its summary.json alone. A failed
    delivery analysis leaves `analysis` None and says why in the run's warnings."""
    verdict = evaluate_run(run, slo, use_default_slo=use_default_slo, options=options, write=False)
    try:
        analysis: DeliveryAnalysis | None = delivery.analyze(run, options)
    except Exception as exc:  # the verdicts already say unknown
        analysis = None
        run.warnings.append(f"delivery analysis failed: {type(exc).__name__}: {exc}")
    return ComparedRun(broker, label, run, verdict, analysis)


def broker_figures(broker: str, runs: list[ComparedRun], options: DeliveryOptions, rate: RateResult | None,
                   directory: Path) -> BrokerFigures:
    seconds = 0.0
    publish_ms, delivery_ms, steady_ms, p99s = [], [], [], []
    counts = dict(publishes=0, acknowledged=0, frames=0, expected_live=0, lost_live=0, lost_eventual=0,
                  duplicated=0, misrouted=0, unexpected=0, late=0)
    for r in runs:
        start, end = r.run.load_span()
        seconds += max(end - start, 1e-9)
        publish_ms.append(series.ok_publish_latency(r.run.pub)[1])
        lat = r.analysis.latency["latency_ms"].to_numpy(dtype="float64")
        delivery_ms.append(lat)
        steady_ms.append(lat[(r.analysis.latency["phase"] == STEADY).to_numpy()])
        p99s.append(Percentiles.of(lat).p99)
        c = r.analysis.counts
        for name in counts:
            counts[name] += getattr(c, name)
    return BrokerFigures(
        broker=broker, run_dirs=[_relative(r.run.run_dir, directory) for r in runs],
        verdict=compose(r.verdict.verdict for r in runs), load_seconds=seconds,
        publishes=counts["publishes"], acknowledged=counts["acknowledged"],
        throughput_per_s=counts["acknowledged"] / seconds, deliveries_per_s=counts["frames"] / seconds,
        publish=Percentiles.of(np.concatenate(publish_ms)), delivery=Percentiles.of(np.concatenate(delivery_ms)),
        delivery_steady=Percentiles.of(np.concatenate(steady_ms)),
        delivery_p99_per_repeat=p99s, expected_live=counts["expected_live"], lost_live=counts["lost_live"],
        lost_eventual=counts["lost_eventual"], duplicated=counts["duplicated"], misrouted=counts["misrouted"],
        unexpected=counts["unexpected"], late=counts["late"], faults=fault_effects(runs, options),
        checks=_check_rows(runs), targets=_target_rows(runs),
        mechanism=_sum_mechanisms([replica_mechanism(r.run.run_dir) for r in runs]), rate=rate,
    )


_STATUS_ORDER = ("recovered", "not observed", "no baseline", "slow", "not recovered", "not healed", "not injected")


def fault_effects(runs: list[ComparedRun], options: DeliveryOptions) -> list[FaultEffect]:
    """One effect per fault id of the timeline, summed over the repeats that had it."""
    by_id: dict[str, list[tuple[ComparedRun, FaultWindow]]] = {}
    for r in runs:
        for fault in r.run.faults:
            by_id.setdefault(fault.id, []).append((r, fault))
    effects = []
    for fault_id, items in by_id.items():
        first_run, first = items[0]
        total = dict(owed_live=0, lost_live=0, lost_eventual=0, late=0, publishes=0, publish_failed=0)
        inside_ms, firsts, recovered, statuses, steady = [], [], [], [], []
        for r, fault in items:
            end = fault.end_or(r.run.t_end)
            recovery = next((x for x in r.analysis.recovery if x.fault_id == fault_id), None)
            if recovery is not None:
                total["owed_live"] += recovery.expected_live_inside
                total["lost_live"] += recovery.lost_live_inside
                total["lost_eventual"] += recovery.lost_eventual_inside
                firsts.append(recovery.first_delivery_s)
                recovered.append(recovery.recovered_s)
                statuses.append(recovery.status)
                steady.append(recovery.steady_p99_ms)
            lat = r.analysis.latency
            sent = lat["sent_ts"].to_numpy(dtype="float64")
            inside = (sent >= fault.start) & (sent <= end)
            inside_ms.append(lat["latency_ms"].to_numpy(dtype="float64")[inside])
            total["late"] += int(lat["late"].to_numpy()[inside].sum())
            pub_sent = r.run.pub["ts_sent"].to_numpy(dtype="float64")
            in_pub = (pub_sent >= fault.start) & (pub_sent <= end)
            total["publishes"] += int(in_pub.sum())
            total["publish_failed"] += int((~series.acknowledged(r.run.pub)[in_pub]).sum())
        start = first_run.run.load_span()[0]
        effects.append(FaultEffect(
            fault_id=fault_id, label=first.label, start_s=first.start - start,
            seconds=first.end_or(first_run.run.t_end) - first.start, inside=Percentiles.of(np.concatenate(inside_ms)),
            steady_p99_ms=_max(steady), first_delivery_s=_max(firsts), recovered_s=_max(recovered),
            status=max(statuses, key=_status_rank) if statuses else "not observed", **total,
        ))
    return sorted(effects, key=lambda e: e.start_s)


def _status_rank(status: str) -> int:
    return _STATUS_ORDER.index(status) if status in _STATUS_ORDER else len(_STATUS_ORDER)


def _max(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _check_rows(runs: list[ComparedRun]) -> list[TargetRow]:
    names: dict[str, None] = {}
    for r in runs:
        for c in r.verdict.checks:
            if not c.name.startswith("slo "):
                names.setdefault(c.name, None)
    rows = []
    for name in names:
        found = [next((c for c in r.verdict.checks if c.name == name), None) for r in runs]
        rows.append(TargetRow(name, compose(c.verdict for c in found if c is not None),
                              tuple(c.summary if c else "—" for c in found)))
    return rows


def _target_rows(runs: list[ComparedRun]) -> list[TargetRow]:
    names: dict[str, None] = {}
    for r in runs:
        for s in r.verdict.slo:
            names.setdefault(f"{s.selector}: {s.condition}", None)
    rows = []
    for name in names:
        found = [next((s for s in r.verdict.slo if f"{s.selector}: {s.condition}" == name), None) for r in runs]
        rows.append(TargetRow(name, compose(s.verdict for s in found if s is not None),
                              tuple(format_value(s.observed, s.unit, s.aggregation) if s else "—" for s in found)))
    return rows


# The reference SUT's log lines (sut/fanout.py, sut/brokers/redis_streams.py). Another
# app's logs simply match nothing, and the report then says nothing about mechanisms.
_CAUGHT_UP = re.compile(r"caught up from id \d+: (\d+) notifications delivered")
_RESUMED = "resuming the stream after"
_GAP = "cannot resume the stream without a gap"


def replica_mechanism(run_dir: Path) -> Mechanism:
    catchups = caught_up = resumes = gaps = 0
    for log in sorted((Path(run_dir) / "logs").glob("r*.log")):
        try:
            text = log.read_text(errors="replace")
        except OSError:
            continue
        for n in _CAUGHT_UP.findall(text):
            if int(n):
                catchups += 1
                caught_up += int(n)
        resumes += text.count(_RESUMED)
        gaps += text.count(_GAP)
    return Mechanism(catchups, caught_up, resumes, gaps)


def _sum_mechanisms(items: list[Mechanism]) -> Mechanism:
    return Mechanism(*(sum(getattr(m, f) for m in items) for f in ("catchups", "caught_up", "resumes", "gaps")))


def _relative(path: Path, base: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def write_figures(comparison: Comparison, answers: Sequence[str], recommendation: dict[str, Any]) -> Path:
    doc = {
        "version": FIGURES_VERSION,
        "scenario": comparison.plan.scenario, "timeline": comparison.plan.timeline, "seed": comparison.plan.seed,
        "repeats": comparison.plan.repeats, "brokers": [b.to_dict() for b in comparison.brokers],
        "answers": list(answers), "recommendation": recommendation,
    }
    text = json.dumps(jsonable(doc), indent=2, allow_nan=False) + "\n"
    return write_atomic(comparison.directory / FIGURES_FILE, text)
