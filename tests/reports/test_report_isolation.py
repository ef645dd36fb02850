"""The isolation check: shaped subscribers (slow, stalled, vanishing) are owed their
messages eventually only, and the others must lose nothing and not be late."""

from __future__ import annotations

from reports import delivery, isolation
from reports.records import load_run, shape_detail
from reports.verdict import Verdict, evaluate_run


def _run(mini, other_latency: float):
    mini.connect("stalled", "u1", 0, detail=shape_detail("stalled", 3.0))
    mini.connect("other", "u1", 0)
    for i in range(10):
        key = f"k{i}"
        mini.publish(key, 10 + i, user="u1")
        mini.recv("other", "u1", key, 10 + i + other_latency)
        mini.recv("stalled", "u1", key, 10 + i + 4.0)  # read only after its stall
    return load_run(mini.write())


def test_a_stalled_reader_is_owed_eventually_and_the_others_pass(mini):
    run = _run(mini, 0.02)
    d = delivery.check(run)
    assert d.verdict is Verdict.PASS, d.summary  # its 4 s are not the app's latency
    result = isolation.check(run)
    assert result.verdict is Verdict.PASS, result.summary
    assert result.details["shaped"] == {"stalled": 1} and result.details["others_late"] == 0
    assert result.details["shaped_p99_ms"] > 3900


def test_others_made_late_fail_the_check(mini):
    result = isolation.check(_run(mini, 2.5))
    assert result.verdict is Verdict.FAIL
    assert "the other 1 paid for them" in result.summary and "10 late in steady state" in result.summary


def test_the_check_is_in_a_verdict_only_with_shaped_subscribers(mini):
    mini.connect("a", "u1", 0)
    mini.publish("k1", 10, user="u1")
    mini.recv("a", "u1", "k1", 10.05)
    mini.hostile(5)
    assert "isolation" not in [c.name for c in evaluate_run(mini.write()).checks]
    mini.connect("b", "u1", 0, detail=shape_detail("slow", 1.0))
    mini.recv("b", "u1", "k1", 10.5)
    assert "isolation" in [c.name for c in evaluate_run(mini.write()).checks]


def test_a_stalled_reader_holding_frames_when_the_load_stops_is_not_owed_them(mini):
    mini.connect("stalled", "u1", 0, until=12, detail=shape_detail("stalled", 3.0))
    mini.publish("k1", 10, user="u1")
    c = delivery.analyze(load_run(mini.write())).counts
    assert c.lost_eventual == 0 and c.expected_eventual == 0
