"""`gauntlet capacity`: how much load a stack holds per replica count, and whether a
replica more adds capacity.

For each replica count, a search steps the load (users of the scenario, or the
fan-out publish rate) until a step breaks a check, with the search compare's rate
search uses (harness/rate_search.py: double until a step breaks, then bisect
geometrically between the last that held and the first that broke). Every step is a
plain `gauntlet run` (harness/runner.py `execute`) with the same thresholds as any run;
reports/capacity_step.py says whether it held. The searches of the replica counts are
interleaved (1 2 3 1 2 3) so machine noise hits every count alike, and stop together
on one time budget. capacity.json records every step as it finishes; Ctrl-C still
leaves a report of what ran (reports/capacity_html.py).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from harness.rate_search import RatePlan, RateSearch
from harness.rundir import new_run_dir
from harness.runner import RunError, RunPlan, execute
from reports.capacity_plan import GENERATOR, CapacityPlan, CapacityResult, CapacityStep, write_plan

Progress = Callable[[str], None]
# Stack up, drain and report around a step's load, for the first time estimate.
STEP_OVERHEAD_S = 30.0
USERS, RATE = "users", "rate"


@dataclass(frozen=True)
class CapacityJob:
    """Everything `gauntlet capacity` will do, checked before anything starts."""

    load: str  # users | rate
    replicas: tuple[int, ...]
    runs: dict[int, RunPlan]  # the base plan per replica count (harness/commands/run.build_plan)
    search: RatePlan  # bounds: start, max, min level, resolution, steps, time budget
    runs_dir: Path
    seed: int
    ramp_s: float = 10.0
    hold_s: float = 20.0
    rate: RatePlan | None = None  # load "rate": subscribers and publishers per step
    argv: tuple[str, ...] = ()

    @property
    def scenario(self) -> Path:
        return self.runs[self.replicas[0]].scenario

    def step_plan(self, replicas: int, level: float, runs_dir: Path) -> RunPlan:
        base = self.runs[replicas]
        common = dict(spec=replace(base.spec, runs_dir=runs_dir), cut=None, timeline=None, timeline_label="",
                      duration=self.ramp_s + self.hold_s)
        if self.load == RATE:
            assert self.rate is not None
            return replace(base, stages=self.rate.stages(level), locust_args=[*base.locust_args,
                                                                             *self.rate.locust_args(level)], **common)
        users = int(level)
        return replace(base, stages=f"{self.ramp_s:g}s:{users},{self.hold_s:g}s:{users}", **common)

    def level(self, proposed: float) -> float:
        """Users are whole; rates keep one decimal."""
        return float(max(1, round(proposed))) if self.load == USERS else round(proposed, 1)


@dataclass(frozen=True)
class CapacityOutcome:
    directory: Path
    report: Path | None
    exit_code: int
    interrupted: bool


StepRunner = Callable[[CapacityJob, int, float, Path, Path], tuple[CapacityStep | None, bool]]


def execute_capacity(job: CapacityJob, progress: Progress = print, build_report: bool = True,
                     run_step: StepRunner | None = None) -> CapacityOutcome:
    directory = new_run_dir(job.runs_dir, f"capacity-{job.scenario.stem}")
    with contextlib.suppress(OSError):
        (directory / "logs").rmdir()  # a search's logs are in its steps
    first = job.runs[job.replicas[0]]
    plan = CapacityPlan(
        scenario=str(job.scenario), load=job.load, replicas=job.replicas, seed=job.seed, broker=first.spec.broker,
        start=job.search.start_rate, max_level=job.search.max_rate, ramp_s=job.ramp_s, hold_s=job.hold_s,
        slo=tuple(first.slo), argv=job.argv, cores=os.cpu_count() or 1, started=time.time(),
        conditions=machine_conditions())
    write_plan(directory, plan)
    progress(f"capacity {directory.name}: {job.scenario.stem}, {job.load} stepped on "
             f"{', '.join(map(str, job.replicas))} replicas, seed {job.seed}; {plan.conditions}")
    plan, interrupted = _search(job, plan, directory, progress, run_step or _run_step)
    plan = replace(plan, ended=time.time(), interrupted=interrupted)
    write_plan(directory, plan)
    if not build_report:
        return CapacityOutcome(directory, None, 130 if interrupted else 0, interrupted)
    from reports.capacity import summary_lines
    from reports.capacity_html import build_capacity_report

    progress("\nwriting the capacity report ...")
    path = build_capacity_report(directory)
    for line in summary_lines(plan):
        progress(line)
    progress(f"report: {path}")
    code = 130 if interrupted else (0 if any(r.held is not None for r in plan.results) else 1)
    return CapacityOutcome(directory, path, code, interrupted)


def _search(job: CapacityJob, plan: CapacityPlan, directory: Path, progress: Progress,
            run_step: StepRunner) -> tuple[CapacityPlan, bool]:
    searches = {n: RateSearch(f"{n} replicas", job.search) for n in job.replicas}
    tried: dict[int, set[float]] = {n: set() for n in job.replicas}
    began = time.monotonic()
    costs: list[float] = []
    step_log = directory / "steps.log"
    unit = plan.unit
    interrupted = False
    try:
        while not interrupted:
            stepped = False
            for n, search in searches.items():
                proposed = search.next_rate()
                if proposed is None:
                    continue
                level = job.level(proposed)
                if level in tried[n]:
                    search.stopped = f"bracketed to one {unit[:-1] if unit.endswith('s') else unit}"
                    continue
                estimate = sum(costs) / len(costs) if costs else job.ramp_s + job.hold_s + STEP_OVERHEAD_S
                if time.monotonic() - began + estimate > job.search.max_seconds:
                    search.out_of_time()
                    continue
                progress(f"  {n} replica{'s' if n != 1 else ' '}  {level:>8,.0f} {unit} ...")
                step, interrupted = run_step(job, n, level, directory, step_log)
                if interrupted:
                    break  # a step cut short says nothing about the level: it is not recorded
                if step is None:
                    search.stopped = "a step could not run (see steps.log)"
                    continue
                tried[n].add(level)
                costs.append(step.seconds)
                search.record(step)
                stepped = True
                if step.outcome == GENERATOR:
                    search.stopped = (f"the load generator could not keep up at {level:,.0f} {unit}: "
                                      f"capacity is at least the last level that held")
                progress(f"  {n} replica{'s' if n != 1 else ' '}  {level:>8,.0f} {unit}  {step.outcome:<9} "
                         f"{step.reason[:110]}")
                plan = plan.with_results(_results(searches))
                write_plan(directory, plan)
            if not stepped:
                break
    except KeyboardInterrupt:
        interrupted = True
    for search in searches.values():
        if interrupted:
            search.stopped = search.stopped or "interrupted"
    plan = plan.with_results(_results(searches))
    return plan, interrupted


def _results(searches: dict[int, RateSearch]) -> tuple[CapacityResult, ...]:
    return tuple(CapacityResult(n, s.held, s.broke, s.stopped or "in progress", tuple(s.steps))
                 for n, s in searches.items())


def _run_step(job: CapacityJob, replicas: int, level: float, directory: Path,
              step_log: Path) -> tuple[CapacityStep | None, bool]:
    from reports.capacity_step import evaluate_step

    plan = job.step_plan(replicas, level, directory / "steps")
    started = time.monotonic()
    with open(step_log, "a", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        print(f"\n== {replicas} replicas at {level:g} ==", flush=True)
        try:
            outcome = execute(plan, lambda m: print(m, flush=True), live=False)
        except RunError as exc:
            print(f"step failed: {exc}", flush=True)
            return None, False
    step = evaluate_step(outcome.run_dir, replicas=replicas, level=level, seconds=time.monotonic() - started,
                         label_dir=str(outcome.run_dir.relative_to(directory)))
    return step, outcome.interrupted


def machine_conditions() -> str:
    """The machine as the search starts: measurements on a shared machine depend on it."""
    try:
        load1, load5, _ = os.getloadavg()
    except OSError:
        return ""
    cores = os.cpu_count() or 1
    return f"{cores} cores, load average {load1:.1f} (5 min {load5:.1f}) at the start"
