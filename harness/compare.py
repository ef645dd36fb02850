"""`gauntlet compare`: one scenario and chaos timeline against several brokers, then one
report.

Every run is a plain `gauntlet run` (harness/runner.py `execute`) with the same seed,
scenario, stages and timeline; only the broker differs. Repeats are interleaved
(A B C A B C), so machine noise (another job, a CPU frequency step) hits every broker
alike instead of one broker's whole block. The optional fan-out rate search
(harness/rate_search.py) interleaves its steps the same way. compare.json records
every run as it finishes (reports/compare_plan.py), so Ctrl-C still leaves a report of
what ran; reports/compare_html.py writes it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from harness.rate_search import RatePlan, RateSearch
from harness.rundir import new_run_dir
from harness.runner import RunError, RunPlan, execute
from reports.compare_plan import ComparePlan, RateStep, RunEntry, write_plan
from reports.check import Verdict

Progress = Callable[[str], None]
# Stack up, drain and report around a step's load, for the first time estimate.
STEP_OVERHEAD_S = 30.0


@dataclass(frozen=True)
class CompareJob:
    """Everything `gauntlet compare` will do, checked before anything starts."""

    brokers: tuple[str, ...]
    repeats: int
    seed: int
    runs: dict[str, RunPlan]  # per broker, validated by harness/commands/run.build_plan
    runs_dir: Path
    rate: RatePlan | None = None
    rate_runs: dict[str, RunPlan] | None = None  # per broker, the fanout scenario's base plan
    argv: tuple[str, ...] = ()

    @property
    def scenario(self) -> Path:
        return self.runs[self.brokers[0]].scenario

    @property
    def duration(self) -> float:
        return self.runs[self.brokers[0]].duration


@dataclass(frozen=True)
class CompareOutcome:
    directory: Path
    report: Path | None
    exit_code: int
    interrupted: bool


def run_order(brokers: tuple[str, ...], repeats: int) -> list[tuple[str, int]]:
    """Interleaved: every broker once, then every broker again (repeat numbers 1-based)."""
    return [(broker, k) for k in range(1, repeats + 1) for broker in brokers]


def _fresh(plan: RunPlan, runs_dir: Path, **changes) -> RunPlan:
    return replace(plan, spec=replace(plan.spec, runs_dir=runs_dir), **changes)


def execute_comparison(job: CompareJob, progress: Progress = print, live: bool = True,
                       build_report: bool = True) -> CompareOutcome:
    directory = new_run_dir(job.runs_dir, f"compare-{job.scenario.stem}")
    with contextlib.suppress(OSError):
        (directory / "logs").rmdir()  # a comparison's logs are in its runs
    first = job.runs[job.brokers[0]]
    plan = ComparePlan(
        scenario=str(first.scenario), brokers=job.brokers, repeats=job.repeats, seed=job.seed,
        timeline=first.timeline_label, stages=first.stages, replicas=first.spec.replicas, slo=tuple(first.slo),
        argv=job.argv, started=time.time(), rate_target=job.rate.target if job.rate else None,
    )
    write_plan(directory, plan)
    progress(f"comparison {directory.name}: {', '.join(job.brokers)} x {job.repeats}, seed {job.seed}")
    interrupted = False
    order = run_order(job.brokers, job.repeats)
    try:
        for n, (broker, repeat) in enumerate(order, 1):
            progress(f"\n[{n}/{len(order)}] {broker}, repeat {repeat} of {job.repeats}")
            run_plan = _fresh(job.runs[broker], directory / "runs")
            try:
                outcome = execute(run_plan, progress, live)
            except RunError as exc:
                plan = replace(plan, notes=plan.notes + (f"{broker} repeat {repeat}: run failed: {exc}",))
                progress(f"  run failed: {exc}")
                write_plan(directory, plan)
                continue
            plan = plan.with_run(RunEntry(broker, repeat, n, str(outcome.run_dir.relative_to(directory)),
                                          outcome.exit_code, outcome.interrupted))
            write_plan(directory, plan)
            if outcome.interrupted:
                interrupted = True
                break
        if job.rate is not None and not interrupted:
            plan, interrupted = search_rates(job, plan, directory, progress)
    except KeyboardInterrupt:
        interrupted = True
    plan = replace(plan, ended=time.time(), interrupted=interrupted)
    write_plan(directory, plan)
    if not build_report:
        return CompareOutcome(directory, None, 130 if interrupted else 0, interrupted)
    return _report(directory, progress, interrupted)


def search_rates(job: CompareJob, plan: ComparePlan, directory: Path,
                  progress: Progress) -> tuple[ComparePlan, bool]:
    assert job.rate is not None and job.rate_runs is not None
    rate = job.rate
    searches = [RateSearch(broker, rate) for broker in job.brokers]
    began = time.monotonic()
    costs: list[float] = []
    step_log = directory / "rate" / "steps.log"
    step_log.parent.mkdir(parents=True, exist_ok=True)
    progress(f"\nfan-out rate search: {len(job.brokers)} brokers, at most {rate.max_steps} steps each, "
             f"{rate.max_seconds:g} s in all (step output in {step_log.relative_to(directory)})")
    interrupted = False
    while not interrupted:
        stepped = False
        for search in searches:
            offered = search.next_rate()
            if offered is None:
                continue
            estimate = sum(costs) / len(costs) if costs else rate.ramp_s + rate.hold_s + STEP_OVERHEAD_S
            if time.monotonic() - began + estimate > rate.max_seconds:
                search.out_of_time()
                continue
            step, interrupted = _rate_step(job, search.broker, offered, directory, step_log)
            if interrupted:
                break  # a step cut short says nothing about the rate: it is not recorded
            if step is None:
                search.stopped = "a step could not run (see rate/steps.log)"
                continue
            costs.append(step.seconds)
            search.record(step)
            stepped = True
            progress(f"  {search.broker:<14} {offered:>8,.0f} msg/s  {'held ' if step.passed else 'broke'}  "
                     f"{step.reason}")
            plan = plan.with_rate(tuple(s.result() for s in searches))
            write_plan(directory, plan)
        if not stepped:
            break
    for search in searches:
        if interrupted:
            search.stopped = search.stopped or "interrupted"
        result = search.result()
        held = f"sustains {result.sustained:,.0f} msg/s" if result.sustained else "no step held"
        progress(f"  {search.broker}: {held}" + (f", broke at {result.broke_at:,.0f}" if result.broke_at else "")
                 + f" ({result.stopped})")
    plan = plan.with_rate(tuple(s.result() for s in searches))
    write_plan(directory, plan)
    return plan, interrupted


def _rate_step(job: CompareJob, broker: str, offered: float, directory: Path,
               step_log: Path) -> tuple[RateStep | None, bool]:
    from reports.rate_step import evaluate_step

    rate = job.rate
    base = job.rate_runs[broker]
    step_plan = _fresh(base, directory / "rate", stages=rate.stages(offered), cut=None, timeline=None,
                       timeline_label="", duration=rate.ramp_s + rate.hold_s,
                       locust_args=rate.locust_args(offered))
    started = time.monotonic()
    with open(step_log, "a", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        print(f"\n== {broker} at {offered:g} msg/s ==", flush=True)
        try:
            outcome = execute(step_plan, lambda m: print(m, flush=True), live=False)
        except RunError as exc:
            print(f"step failed: {exc}", flush=True)
            return None, False
    step = evaluate_step(outcome.run_dir, broker=broker, rate=offered, publishers=rate.publishers(offered),
                         subscribers=rate.subscribers, ramp_s=rate.ramp_s, hold_s=rate.hold_s, target=rate.target,
                         seconds=time.monotonic() - started, label_dir=str(outcome.run_dir.relative_to(directory)))
    return step, outcome.interrupted


def _report(directory: Path, progress: Progress, interrupted: bool) -> CompareOutcome:
    from reports.compare_html import build_compare_report

    progress("\ncomparing the runs and writing the report ...")
    comparison, path = build_compare_report(directory)
    for line in summary_lines(comparison):
        progress(line)
    progress(f"report: {path}")
    verdicts = {b.verdict for b in comparison.brokers}
    if interrupted:
        code = 130
    elif Verdict.PASS in verdicts:
        code = 0
    elif Verdict.UNKNOWN in verdicts:
        code = 3  # no broker failed, none could be shown to pass
    else:
        code = 1  # every broker failed a check (or none finished a run)
    return CompareOutcome(directory, path, code, interrupted)


def summary_lines(comparison) -> list[str]:
    """The answer and a compact table, for the terminal (and the bench)."""
    from reports.compare_verdict import answers, recommend, rate_text

    advice = recommend(comparison.brokers)
    lines = ["", advice.headline, *advice.tradeoffs, *answers(comparison.brokers), ""]

    def ms(v: float | None) -> str:
        return "—" if v is None else f"{v:,.1f}"

    def recovery(fid: str) -> Callable:
        def cell(b) -> str:
            e = next((x for x in b.faults if x.fault_id == fid), None)
            if e is None:
                return "—"
            return f"{e.recovered_s:.1f} s" if e.recovered_s is not None else e.status
        return cell

    rows: list[tuple[str, Callable]] = [
        ("verdict", lambda b: b.verdict.value),
        ("acked publishes / s", lambda b: f"{b.throughput_per_s:,.1f}"),
        ("deliveries / s", lambda b: f"{b.deliveries_per_s:,.1f}"),
        ("publish p50/p95/p99 ms", lambda b: f"{ms(b.publish.p50)} / {ms(b.publish.p95)} / {ms(b.publish.p99)}"),
        ("delivery p50/p95/p99 ms",
         lambda b: f"{ms(b.delivery.p50)} / {ms(b.delivery.p95)} / {ms(b.delivery.p99)}"),
        ("delivery p99 outside faults", lambda b: ms(b.delivery_steady.p99)),
        ("lost live / for good", lambda b: f"{b.lost_live:,} / {b.lost_eventual:,}"),
        ("duplicated", lambda b: f"{b.duplicated:,}"),
        ("late", lambda b: f"{b.late:,}"),
    ]
    for effect in comparison.brokers[0].faults if comparison.brokers else []:
        rows.append((f"{effect.fault_id} {effect.label}: recovery", recovery(effect.fault_id)))
    if any(b.rate for b in comparison.brokers):
        rows.append(("sustained fan-out", lambda b: rate_text(b.rate.sustained) if b.rate else "—"))
    cells = [[title, *(value(b) for b in comparison.brokers)] for title, value in rows]
    header = ["", *(b.broker for b in comparison.brokers)]
    widths = [max(len(str(r[i])) for r in [header, *cells]) for i in range(len(header))]
    for r in [header, *cells]:
        lines.append("  ".join(str(c).ljust(widths[0]) if i == 0 else str(c).rjust(widths[i])
                               for i, c in enumerate(r)))
    return lines
