"""The shutdown check: slow requests in flight at a graceful stop must complete."""

from __future__ import annotations

from reports import shutdown
from reports.records import load_run
from reports.verdict import Verdict, evaluate_run

SLOW = "POST /api/slow (slow)"


def _run(mini, dropped: int):
    mini.connect("a", "u1", 0)
    mini.fault("f1", "terminate", "r2", 10, 13)
    for i in range(4):  # in flight at 10 s: sent at 8.5, 2.5 s each
        ok = i >= dropped
        mini.http(8.5, SLOW, 2500.0 if ok else 1600.0, ok=ok, status=200 if ok else 502,
                  instance="r2" if ok else None)
    mini.http(3, SLOW, 2500.0)  # done long before the stop
    mini.http(10.5, SLOW, 2500.0, instance="r1")  # sent after it: never the dying replica's
    return load_run(mini.write())


def test_in_flight_requests_that_completed_pass(mini):
    result = shutdown.check(_run(mini, 0))
    assert result.verdict is Verdict.PASS, result.summary
    assert result.summary == "0 of 4 requests in flight at a graceful stop dropped (f1 terminate r2: 0 of 4 dropped)"


def test_dropped_requests_fail_naming_them(mini):
    result = shutdown.check(_run(mini, 3))
    assert result.verdict is Verdict.FAIL
    assert result.details["dropped"] == 3 and result.details["dropped_requests"][0]["status"] == 502


def test_the_check_appears_only_with_a_graceful_stop_and_slow_requests(mini):
    mini.connect("a", "u1", 0)
    mini.publish("k1", 10, user="u1")
    mini.recv("a", "u1", "k1", 10.05)
    mini.hostile(4)
    mini.http(3, SLOW, 2500.0)
    assert "shutdown" not in [c.name for c in evaluate_run(mini.write()).checks]
    mini.fault("f1", "terminate", "r2", 20, 23)
    checks = {c.name: c for c in evaluate_run(mini.write()).checks}
    assert checks["shutdown"].verdict is Verdict.UNKNOWN and "no slow request was in flight" in checks[
        "shutdown"].summary
