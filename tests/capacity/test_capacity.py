"""`gauntlet capacity`: the search against a stack of known capacity (no servers), the
knee, efficiency and explanation it reports, its input checks, and one real search on
a small stack whose knee a load-dependent target puts at a known place."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from harness.capacity import CapacityJob, execute_capacity
from harness.cli import main
from harness.rate_search import RatePlan
from harness.runner import RunPlan
from harness.spec import StackSpec
from reports.capacity import flattening, knees, summary_lines
from reports.capacity_plan import BROKE, GENERATOR, HELD, CapacityStep, read_plan

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "ramp.py"


def fake_job(tmp_path: Path, replicas=(1, 2, 3), **search) -> CapacityJob:
    runs = {n: RunPlan(scenario=SCENARIO, spec=StackSpec(replicas=n), seed=1, duration=30.0) for n in replicas}
    plan = RatePlan(start_rate=100.0, max_rate=10_000.0, min_rate=1.0, resolution=1.25,
                    max_steps=search.pop("max_steps", 8), max_seconds=search.pop("max_seconds", 3600.0))
    return CapacityJob(load="users", replicas=tuple(replicas), runs=runs, search=plan, runs_dir=tmp_path / "runs",
                       seed=1, ramp_s=1.0, hold_s=3.0)


def machine_bound(capacity: dict[int, float], generator_at: dict[int, float] | None = None, calls=None):
    """A step runner for a stack that holds `capacity[n]` users on n replicas, whose
    machine's two cores are busy past the knee."""
    def run_step(job, n, level, directory, log):
        if calls is not None:
            calls.append((n, level))
        if generator_at and level >= generator_at.get(n, float("inf")):
            outcome, reason = GENERATOR, "the load generator could not keep up: loop late"
        elif level <= capacity[n]:
            outcome, reason = HELD, "every check passed"
        else:
            outcome, reason = BROKE, "slo http_req_duration: p(95)<500: p(95) = 900 ms"
        busy = outcome != HELD
        step = CapacityStep(replicas=n, level=level, outcome=outcome, reason=reason, run_dir=f"steps/{n}-{level}",
                            seconds=1.0, failed=("slo http_req_duration: p(95)<500",) if outcome == BROKE else (),
                            bottleneck="the machine's 2 cores (…), no single component at its limit" if busy else
                            "nothing at its limit", cpu={f"r{i}": 1.4 / n for i in range(1, n + 1)} | {"load-w0": 0.4},
                            machine_cpu=2.0 if busy else 1.0, other_cpu=0.1, sockets_peak=int(level * 0.8))
        return step, False
    return run_step


def test_the_search_finds_each_knee_interleaved_and_explains_the_flattening(tmp_path):
    calls: list[tuple[int, float]] = []
    capacity = {1: 400.0, 2: 560.0, 3: 600.0}
    outcome = execute_capacity(fake_job(tmp_path), progress=lambda m: None,
                               run_step=machine_bound(capacity, calls=calls))
    assert outcome.exit_code == 0 and outcome.report.is_file()
    assert [n for n, _ in calls[:6]] == [1, 2, 3, 1, 2, 3], "replica counts interleaved"
    plan = read_plan(outcome.directory)
    for result in plan.results:
        assert result.held <= capacity[result.replicas] < result.broke
        assert result.broke / result.held <= 1.25 or "step budget" in result.stopped
        assert all(float(s.level).is_integer() for s in result.steps), "users are whole"
    by = {k.replicas: k for k in knees(plan)}
    assert by[1].efficiency == 1.0
    assert by[3].efficiency == pytest.approx(by[3].capacity / (3 * by[1].capacity))
    assert by[3].efficiency < 0.8 and not by[3].lower_bound
    text = flattening(plan)
    assert "flattens" in text and "2 cores were busy" in text and "adds processes, not CPU" in text
    lines = "\n".join(summary_lines(plan))
    assert "efficiency" in lines and "broke on http_req_duration" in lines
    page = outcome.report.read_text()
    for sid in ("answer", "knees", "plots", "cores", "steps", "conditions"):
        assert f'<section id="{sid}">' in page
    assert page.count("<img") == 3


def test_a_generator_that_gives_out_ends_that_counts_search_with_a_lower_bound(tmp_path):
    outcome = execute_capacity(fake_job(tmp_path, replicas=(1, 2)), progress=lambda m: None,
                               run_step=machine_bound({1: 400.0, 2: 5_000.0}, generator_at={2: 800.0}))
    plan = read_plan(outcome.directory)
    two = plan.result(2)
    assert two.generator_bound and "could not keep up at 800" in two.stopped
    assert two.held == 400.0 and two.steps[-1].outcome == GENERATOR, "no level past the generator's limit"
    k2 = next(k for k in knees(plan) if k.replicas == 2)
    assert k2.lower_bound and "load generator" in k2.why
    assert "≥ 400" in "\n".join(summary_lines(plan))


def test_the_budget_and_step_limits_bound_the_search(tmp_path):
    calls: list = []
    outcome = execute_capacity(fake_job(tmp_path, replicas=(1,), max_steps=2), progress=lambda m: None,
                               run_step=machine_bound({1: 10_000.0}, calls=calls))
    assert len(calls) == 2 and "step budget" in read_plan(outcome.directory).result(1).stopped
    assert knees(read_plan(outcome.directory))[0].lower_bound, "nothing broke: at least"
    calls.clear()
    outcome = execute_capacity(fake_job(tmp_path, replicas=(1,), max_seconds=20.0), progress=lambda m: None,
                               run_step=machine_bound({1: 10_000.0}, calls=calls))
    assert calls == [] and read_plan(outcome.directory).result(1).stopped.startswith("time budget")
    assert outcome.exit_code == 1, "no level held"


@pytest.mark.parametrize("args, message", [
    (["ramp", "--replicas", "0,2"], "between 1 and"),
    (["ramp", "--replicas", "1,1"], "more than once"),
    (["ramp", "--replicas", "one"], "whole numbers"),
    (["ramp", "--hold", "1s"], "--hold must be at least 3s"),
    (["ramp", "--start", "0"], "--start must be more than 0"),
    (["ramp", "--load", "sockets"], "invalid choice"),
    (["ramp", "--slo", "http_req_duration: p95<500"], "write percentiles as p("),
    (["nosuch"], "no scenario"),
])
def test_bad_input_gets_one_line_and_exit_2_before_anything_starts(tmp_path, capsys, args, message):
    assert main(["capacity", *args, "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) <= 3
    assert not (tmp_path / "runs").exists(), "nothing started"


def test_help_teaches_the_search(capsys):
    assert main(["capacity", "--help"]) == 0
    out = capsys.readouterr().out
    for words in ("--replicas", "double it while every check passes", "scaling efficiency", "--load",
                  "could not keep up", "examples:", "Exit status"):
        assert words in out


@pytest.mark.integration
def test_a_real_search_on_a_small_stack(tmp_path):
    """20 users make about 100 HTTP requests in a 2 s + 6 s step, 40 about 200: with
    `http_reqs: count<150` the knee sits between them, on one replica and on two."""
    code = main(["capacity", "ramp", "--replicas", "1,2", "--start", "20", "--steps", "2", "--ramp", "2s",
                 "--hold", "6s", "--budget", "8m", "--seed", "3", "--slo", "http_reqs: count<150",
                 "--runs-dir", str(tmp_path / "runs")])
    (directory,) = (tmp_path / "runs").glob("*-capacity-ramp")
    plan = read_plan(directory)
    assert code == 0, plan
    assert [r.replicas for r in plan.results] == [1, 2]
    for result in plan.results:
        assert [s.level for s in result.steps] == [20.0, 40.0], result.stopped
        first, second = result.steps
        run = directory / first.run_dir
        assert (run / "summary.json").is_file() and (run / "resources.csv").is_file(), "each step is a real run"
        assert first.sockets_peak >= 10 and first.cpu, "what the step did and used"
        if GENERATOR in (first.outcome, second.outcome):
            continue  # a machine too busy for the generator: the search says so and stops
        assert first.outcome == HELD, first.reason
        assert second.outcome == BROKE and any("http_reqs" in f for f in second.failed), second.reason
        assert result.held == 20.0 and result.broke == 40.0
    page = (directory / "capacity.html").read_text()
    assert page.count("<img") == 3 and '<section id="knees">' in page
    summary = json.loads((directory / plan.results[0].steps[0].run_dir / "summary.json").read_text())
    assert any(c["name"] == "slo http_reqs: count<150" for c in summary["checks"]), "the run's own thresholds"
    # The report can be rebuilt from the directory alone.
    (directory / "capacity.html").unlink()
    assert main(["capacity", str(directory)]) == 0 and (directory / "capacity.html").is_file()
    assert replace(plan).results == read_plan(directory).results
