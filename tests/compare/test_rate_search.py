"""The fan-out rate search: its bisection against a known capacity, its bounds, and one
real step on a real stack with a tiny budget."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from harness.commands.compare import build_job, build_parser
from harness.compare import search_rates
from harness.rate_search import RatePlan, RateSearch
from reports.compare_plan import ComparePlan, RateStep, read_plan, write_plan


def step(broker: str, rate: float, holds: bool) -> RateStep:
    return RateStep(broker=broker, rate=rate, publishers=2, subscribers=10, achieved_per_s=rate,
                    deliveries_per_s=rate * 10, delivery_p99_ms=20.0 if holds else 900.0, lost=0,
                    failed_share=0.0, passed=holds, reason="", run_dir="", seconds=1.0)


def search_against(capacity: float, plan: RatePlan) -> RateSearch:
    """Drive a search with a broker that holds every rate up to `capacity`."""
    search = RateSearch("b", plan)
    while (rate := search.next_rate()) is not None:
        search.record(step("b", rate, rate <= capacity))
    return search


@pytest.mark.parametrize("capacity", [130.0, 777.0, 5_000.0])
def test_doubling_then_bisecting_brackets_the_capacity(capacity):
    plan = RatePlan(start_rate=100.0, max_steps=20, resolution=1.25)
    search = search_against(capacity, plan)
    assert search.held <= capacity < search.broke
    assert search.broke / search.held <= 1.25 and search.stopped.startswith("bracketed")
    rates = [s.rate for s in search.steps]
    assert rates[:2] == [100.0, 200.0], "doubles first"
    assert len(rates) == len(set(rates)), "never tries a rate twice"


def test_a_first_step_that_breaks_halves_down_until_one_holds():
    search = search_against(30.0, RatePlan(start_rate=100.0, max_steps=20))
    assert [s.rate for s in search.steps][:3] == [100.0, 50.0, 25.0]
    assert search.held is not None and search.held <= 30.0


def test_the_search_is_bounded_by_steps_by_the_rate_cap_and_by_time():
    few = search_against(10_000.0, RatePlan(start_rate=100.0, max_steps=3))
    assert len(few.steps) == 3 and few.stopped == "step budget (3 steps)" and few.broke is None
    capped = search_against(1e9, RatePlan(start_rate=100.0, max_rate=400.0, max_steps=20))
    assert [s.rate for s in capped.steps] == [100.0, 200.0, 400.0] and "highest rate" in capped.stopped
    hopeless = search_against(0.0, RatePlan(start_rate=100.0, min_rate=20.0, max_steps=20))
    assert hopeless.held is None and "broke even at" in hopeless.stopped
    timed = RateSearch("b", RatePlan())
    timed.out_of_time()
    assert timed.next_rate() is None and timed.result().stopped.startswith("time budget")


def test_publishers_scale_with_the_rate_and_every_message_is_a_broadcast():
    plan = RatePlan(per_publisher=50.0, max_publishers=8, subscribers=30)
    assert [plan.publishers(r) for r in (10, 100, 260, 10_000)] == [2, 2, 6, 8]
    args = plan.locust_args(300.0)
    assert args[args.index("--publishers") + 1] == "6" and float(args[args.index("--publish-rate") + 1]) == 50.0
    assert args[args.index("--broadcast-ratio") + 1] == "1"
    assert plan.stages(300.0) == "5s:36,20s:36"


@pytest.mark.integration
def test_a_real_search_with_a_tiny_budget(tmp_path):
    ns = build_parser().parse_args(["--brokers", "redis,postgres", "fanout", "--replicas", "2", "--seed", "9",
                                    "--max-rate-search", "--rate-steps", "1", "--rate-step", "5s",
                                    "--rate-start", "40", "--rate-subscribers", "8", "--rate-budget", "5m",
                                    "--runs-dir", str(tmp_path / "runs")])
    job = build_job(ns, ["test"])
    job = replace(job, brokers=("redis",), rate=replace(job.rate, ramp_s=3.0))
    directory = tmp_path / "comparison"
    directory.mkdir()
    plan = ComparePlan(scenario="fanout", brokers=("redis",), repeats=1, seed=9, rate_target=job.rate.target)
    write_plan(directory, plan)
    messages: list[str] = []
    plan, interrupted = search_rates(job, plan, directory, messages.append)
    assert not interrupted
    (result,) = plan.rate
    assert result.stopped == "step budget (1 steps)" and len(result.steps) == 1
    only = result.steps[0]
    assert only.rate == 40.0 and only.publishers == 2 and only.subscribers == 8
    run = directory / only.run_dir
    assert (run / "summary.json").is_file(), "each step is a real run with its own records and checks"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["run"]["stack"]["broker"] == "redis"
    # Two replicas on a quiet loopback stack keep up with 40 broadcasts/s to 8 subscribers.
    assert only.passed, only.reason
    assert only.achieved_per_s == pytest.approx(40.0, rel=0.1)
    assert only.deliveries_per_s == pytest.approx(40.0 * 8, rel=0.25)
    assert read_plan(directory).rate == plan.rate, "compare.json holds the steps"

    # A budget too small for even one step starts nothing.
    short = replace(job, rate=replace(job.rate, max_seconds=10.0))
    plan, _ = search_rates(short, replace(plan, rate=()), directory, messages.append)
    assert plan.rate[0].steps == () and plan.rate[0].stopped.startswith("time budget")
    assert len(list((directory / "rate").glob("*-fanout-redis"))) == 1
