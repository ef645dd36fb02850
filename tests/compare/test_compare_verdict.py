"""The comparison's plain-words answer and recommendation, from figures with known values."""

from __future__ import annotations

from reports.compare_plan import RateResult
from reports.compare_verdict import answers, fault_answer, recommend
from reports.comparison import BrokerFigures, FaultEffect, Mechanism, Percentiles, TargetRow
from reports.check import Verdict


def effect(*, owed=200, lost_live=0, lost_eventual=0, late=0, failed=0, p99=15.0, steady=12.0) -> FaultEffect:
    return FaultEffect(fault_id="f1", label="down redis", start_s=20.0, seconds=15.0, owed_live=owed,
                       lost_live=lost_live, lost_eventual=lost_eventual, late=late, publishes=100,
                       publish_failed=failed, inside=Percentiles(owed, 10.0, p99, p99, p99 * 1.1),
                       steady_p99_ms=steady, first_delivery_s=1.0, recovered_s=3.0 if late else None,
                       status="recovered")


def figures(broker: str, fault: FaultEffect | None = None, *, lost_eventual=0, duplicated=0, steady_p99=20.0,
            failed_targets=0, sustained: float | None = None, mechanism=Mechanism()) -> BrokerFigures:
    faults = [fault] if fault else []
    targets = [TargetRow(f"t{i}", Verdict.FAIL, ("x",)) for i in range(failed_targets)]
    return BrokerFigures(
        broker=broker, run_dirs=[f"runs/{broker}"], verdict=Verdict.PASS, load_seconds=60.0, publishes=600,
        acknowledged=600, throughput_per_s=10.0, deliveries_per_s=80.0, publish=Percentiles(600, 5.0, 9.0, 12.0, 20.0),
        delivery=Percentiles(4000, 8.0, 15.0, steady_p99 * 3, 900.0),
        delivery_steady=Percentiles(3000, 8.0, 12.0, steady_p99, 40.0), delivery_p99_per_repeat=[steady_p99 * 3],
        expected_live=4000, lost_live=sum(f.lost_live for f in faults), lost_eventual=lost_eventual,
        duplicated=duplicated, misrouted=0, unexpected=0, late=sum(f.late for f in faults), faults=faults,
        checks=[], targets=targets, mechanism=mechanism,
        rate=RateResult(broker, sustained, None, "bracketed") if sustained else None,
    )


def test_a_broker_the_fault_does_not_touch_wins_and_the_reason_names_the_others():
    pg = figures("postgres", effect(), steady_p99=25.0)
    redis = figures("redis", effect(late=152), steady_p99=12.0, mechanism=Mechanism(3, 338, 0, 0))
    streams = figures("redis-streams", effect(late=160), steady_p99=11.0, mechanism=Mechanism(0, 0, 3, 0))
    advice = recommend([pg, redis, streams])
    assert advice.broker == "postgres"
    assert "least harm" in advice.headline and "redis 152" in advice.headline and "redis-streams 160" in advice.headline
    said = answers([pg, redis, streams])
    assert said[0].startswith("postgres was unaffected by down redis")
    assert "152 of 200 deliveries" in said[1] and "catch-up from Postgres (338 notifications)" in said[1]
    assert "read from the stream" in said[2] and "no catch-up needed" in said[2]


def test_a_broker_that_loses_for_good_is_never_recommended_however_fast():
    lossy = figures("memory", effect(lost_live=50, lost_eventual=50), lost_eventual=50, steady_p99=1.0,
                    sustained=10_000.0)
    slow = figures("postgres", effect(late=10), steady_p99=80.0, sustained=200.0)
    advice = recommend([lossy, slow])
    assert advice.broker == "postgres" and "lost nothing for good" in advice.headline and "memory" in advice.headline
    assert any("memory is no alternative" in t for t in advice.tradeoffs)
    assert "memory lost 50 deliveries for good under down redis" in fault_answer(lossy, lossy.faults[0])
    assert recommend([lossy, figures("other", duplicated=3)]).broker is None


def test_differences_within_noise_are_a_tie_not_a_verdict():
    a = figures("redis", effect(late=13), steady_p99=20.0)
    b = figures("redis-streams", effect(late=15), steady_p99=21.0)
    advice = recommend([a, b])
    assert advice.headline.startswith("Use redis or redis-streams") or \
        advice.headline.startswith("Use redis-streams or redis")
    assert "within run-to-run noise" in advice.headline


def test_capacity_decides_between_brokers_level_on_everything_before_it():
    a = figures("redis", effect(late=100), sustained=200.0)
    b = figures("redis-streams", effect(late=105), sustained=800.0)
    advice = recommend([a, b])
    assert advice.broker == "redis-streams" and "most fan-out (800 msg/s, against redis 200 msg/s)" in advice.headline


def test_missed_targets_and_live_loss_come_before_harm_and_latency():
    missing = figures("fast", effect(), failed_targets=2, steady_p99=1.0)
    fine = figures("steady", effect(late=40), steady_p99=50.0)
    assert recommend([missing, fine]).broker == "steady"
    drops = figures("drops", effect(lost_live=30), steady_p99=1.0)
    assert recommend([drops, fine]).broker == "steady"
    assert "missed 30 of 200 deliveries live" in fault_answer(drops, drops.faults[0])
