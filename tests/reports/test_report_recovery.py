"""Recovery counts loss: a fault has recovered when, after its heal, deliveries are
complete again and latency is back; both times, and why when it cannot be judged."""

from __future__ import annotations

import pytest

from reports import delivery, recovery
from reports.delivery import DeliveryOptions
from reports.records import load_run
from reports.check import Verdict


def history(mini, *, until: float, lost: tuple[float, float] | None = None, slow: tuple[float, float] | None = None,
            fault: tuple[float, float] = (20.0, 30.0), start: float = 1.0, step: float = 0.5,
            kind: str = "down", outcome: str = "ok"):
    """Subscriber a on r1 gets a message from r2 every `step` s from `start` to `until`;
    those sent in `lost` never arrive, those sent in `slow` take 800 ms instead of 20."""
    mini.connect("a", "u1", 0, instance="r1")
    mini.fault("f1", kind, "redis", *fault, outcome=outcome)
    t, i = start, 0
    while t < until:
        key = f"w0-{i}"
        mini.publish(key, t, user="u1", instance="r2")
        in_fault = fault[0] <= t <= fault[1]
        missed = lost is not None and lost[0] <= t < lost[1]
        if not in_fault and not missed:
            late = 0.8 if slow is not None and slow[0] <= t < slow[1] else 0.02
            mini.recv("a", "u1", key, t + late, instance="r1", origin="r2")
        t, i = round(t + step, 6), i + 1
    mini.meta["end"] = mini.meta["start"] + until + 1
    return mini.write()


def one(path, **options) -> recovery.FaultRecovery:
    run = load_run(path)
    (r,) = delivery.analyze(run, DeliveryOptions(**options) if options else None).recovery
    return r


def test_loss_after_the_heal_delays_recovery_and_is_counted(mini):
    r = one(history(mini, until=70, lost=(30.0, 36.2)))
    assert r.lost_live_after_heal == 12                      # 30.5 .. 36.0 every 0.5 s
    assert r.last_loss_after_heal_s == pytest.approx(6.0)
    assert r.delivery_recovered_s == pytest.approx(6.5)     # the first message after the last miss
    # Latency is judged on what arrives: the first deliveries after the heal were fast.
    assert r.latency_recovered_s == pytest.approx(6.52, abs=0.01)
    assert r.recovered_s == pytest.approx(6.52, abs=0.01) and r.status == recovery.RECOVERED
    result = delivery.check_recovery(load_run(mini.root))
    assert result.verdict is Verdict.PASS
    assert "recovered in 6.5 s" in result.summary and "complete again 6.5 s after the heal" in result.summary
    assert "12 owed deliveries missed" in result.summary


def test_nothing_missed_after_the_heal_recovers_with_latency(mini):
    r = one(history(mini, until=70, slow=(30.0, 34.0)))
    assert r.delivery_recovered_s == 0.0 and r.last_loss_after_heal_s is None
    # The last slow one arrived 4.3 s after the heal; a whole healthy window follows it.
    assert 4.3 < r.latency_recovered_s <= 5.1
    assert r.recovered_s == r.latency_recovered_s and r.status == recovery.RECOVERED


def test_loss_beyond_the_heal_window_is_not_recovered(mini):
    r = one(history(mini, until=70, lost=(30.0, 80.0)), heal_window_s=10.0)
    assert r.status == recovery.NOT_RECOVERED and r.delivery_recovered_s is None
    assert r.last_loss_after_heal_s == pytest.approx(39.5)
    assert "still 39.5 s after it" in r.reason
    assert delivery.check_recovery(load_run(mini.root), DeliveryOptions(heal_window_s=10.0)).verdict is Verdict.FAIL


def test_complete_again_only_after_the_heal_window_is_slow(mini):
    r = one(history(mini, until=70, lost=(30.0, 45.0)), heal_window_s=10.0)
    assert r.delivery_recovered_s == pytest.approx(15.0) and r.status == recovery.SLOW


def test_a_run_that_ends_too_soon_after_the_heal_cannot_be_judged(mini):
    r = one(history(mini, until=40, lost=(30.0, 41.0)))
    assert r.status == recovery.NOT_OBSERVED and r.delivery_recovered_s is None
    assert "not shown complete since" in r.reason
    assert "less than the 30 s heal window" in r.reason
    result = delivery.check_recovery(load_run(mini.root))
    assert result.verdict is Verdict.UNKNOWN and "less than the 30 s heal window" in result.summary


def test_no_steady_baseline_before_the_fault_cannot_be_judged(mini):
    r = one(history(mini, until=70, fault=(1.0, 10.0), start=1.5))
    assert r.delivery_recovered_s == 0.0 and r.steady_p99_ms is None
    assert r.status == recovery.NO_BASELINE
    assert "no steady-state deliveries before the fault" in r.reason
    assert delivery.check_recovery(load_run(mini.root)).verdict is Verdict.UNKNOWN


def test_latency_never_back_is_not_recovered(mini):
    r = one(history(mini, until=70, slow=(30.0, 80.0)))
    assert r.status == recovery.NOT_RECOVERED and r.latency_recovered_s is None
    assert "latency p99 not back" in r.reason


def test_the_report_shows_both_times(mini):
    from reports.html import report_run

    _, page = report_run(history(mini, until=70, lost=(30.0, 36.2)))
    text = page.read_text()
    assert "deliveries complete after" in text and "6.5 s" in text and "latency back after" in text


def test_an_instant_fault_recovers_from_its_own_time(mini):
    # A flush: one step, its window is its inject. The app loses its subscriptions'
    # state and delivers again only 6 s later.
    r = one(history(mini, until=70, fault=(30.0, 30.01), kind="flush", lost=(30.0, 36.2)))
    assert r.delivery_recovered_s == pytest.approx(6.49, abs=0.01) and r.status == recovery.RECOVERED
    assert "complete again 6.5 s after the flush" in r.reason and "heal" not in r.reason
    result = delivery.check_recovery(load_run(mini.root))
    assert result.verdict is Verdict.PASS and "f1 flush redis: recovered in 6.5 s" in result.summary


def test_an_instant_fault_the_app_never_recovers_from_fails(mini):
    # Redis restarted empty under a channel layer: nothing is delivered again.
    r = one(history(mini, until=70, fault=(30.0, 30.01), kind="flush", lost=(30.0, 80.0)), heal_window_s=10.0)
    assert r.status == recovery.NOT_RECOVERED and "missed after the flush" in r.reason
    assert delivery.check_recovery(load_run(mini.root), DeliveryOptions(heal_window_s=10.0)).verdict is Verdict.FAIL


def test_a_fault_ended_by_the_reaper_cannot_be_judged(mini):
    # The harness died inside the fault; the reaper's teardown closed it after the load
    # had stopped. Its end is no heal: the same window healed by the run is judged.
    run = history(mini, until=70, lost=(30.0, 36.2), outcome="interrupted")
    r = one(run)
    assert r.status == recovery.INTERRUPTED and r.recovered_s is None and r.delivery_recovered_s is None
    assert "cannot be judged" in r.reason and "not a heal" in r.reason
    result = delivery.check_recovery(load_run(run))
    assert result.verdict is Verdict.UNKNOWN and "f1 down redis: interrupted" in result.summary


def test_the_load_stopping_before_the_heal_says_so(mini):
    r = one(history(mini, until=25, fault=(20.0, 40.0)))
    assert r.status == recovery.NOT_OBSERVED and "the load had stopped before the heal" in r.reason
