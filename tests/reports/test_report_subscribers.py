"""Subscribers that could not connect or reconnect (`ws_subscribers_unconnected`): a
subscriber without a connection is owed nothing, so a stack whose replicas all died
must fail on this count, not pass delivery at 100 %."""

from __future__ import annotations

import pytest
from report_support import T0, MiniRun

from reports.subscribers import stuck_intervals
from reports.records import load_run
from reports.verdict import Verdict, evaluate_run

TARGET = "slo ws_subscribers_unconnected{phase:steady}: count==0"


def _base(mini: MiniRun) -> MiniRun:
    """Two healthy subscribers and a publish every 2 s for 50 s, so delivery is judged."""
    for sub in ("s1", "s2"):
        mini.connect(sub, "u1", 0.5, until=55)
    for i in range(25):
        key = f"w0-{i}"
        mini.publish(key, 1 + 2 * i, user="u1")
        mini.recv("s1", "u1", key, 1.05 + 2 * i)
        mini.recv("s2", "u1", key, 1.05 + 2 * i)
        mini.http(1.5 + 2 * i, "GET /api/items/{id}", 12.0)
    for row in mini.rows["conn"]:
        if row["event"] == "disconnect":
            row["detail"] = "stopped by load generator"
    return mini


def _conn(mini: MiniRun, sub: str, at: float, event: str, conn: int, instance: str | None = None,
          detail: str = "") -> None:
    mini.rows["conn"].append({"ts": T0 + at, "sub": sub, "user": "u2", "conn": conn, "event": event,
                              "instance": instance, "detail": detail, "code": 1006 if event == "disconnect" else None})


def _target(verdict):
    return next(c for c in verdict.checks if c.name == TARGET)


def test_healthy_subscribers_pass_the_default_target(mini):
    verdict = evaluate_run(_base(mini).write())
    assert _target(verdict).verdict is Verdict.PASS and verdict.verdict is not Verdict.FAIL, \
        [(c.name, c.summary) for c in verdict.checks if c.verdict is not Verdict.PASS]


def test_a_subscriber_that_never_gets_back_fails_even_though_delivery_passes(mini):
    _base(mini)
    _conn(mini, "s3", 0.5, "connect", 1, "r2")
    _conn(mini, "s3", 10.0, "disconnect", 1, "r2", "closed")
    for at in (10.3, 11.0, 13.0, 17.0, 25.0, 35.0, 45.0):
        _conn(mini, "s3", at, "connect_fail", 2)
    verdict = evaluate_run(mini.write())
    delivery = next(c for c in verdict.checks if c.name == "delivery")
    assert delivery.verdict is Verdict.PASS, "s3 is owed nothing while it has no connection"
    check = _target(verdict)
    assert check.verdict is Verdict.FAIL and verdict.exit_code == 1
    assert "subscribers without a connection: count = 1" in check.summary
    (row,) = stuck_intervals(load_run(mini.root)).itertuples()
    assert (row.sub, row.instance, row.reason) == ("s3", "r2", "reconnect")
    assert row.start == pytest.approx(T0 + 20.0), "counted once the 10 s allowance ran out"


def test_quick_reconnects_a_storm_and_a_short_stop_are_not_counted(mini):
    _base(mini).fault("f1", "kill", "r2", 10, 18)
    _conn(mini, "s3", 0.5, "connect", 1, "r2")
    _conn(mini, "s3", 10.0, "disconnect", 1, "r2", "closed")  # a kill: back on r1 half a second later
    _conn(mini, "s3", 10.5, "connect", 2, "r1")
    _conn(mini, "s3", 20.0, "disconnect", 2, "r1", "reconnect storm")  # planned: away for its own delay
    _conn(mini, "s3", 28.0, "connect", 3, "r3")
    _conn(mini, "s3", 40.0, "disconnect", 3, "r3", "closed")
    _conn(mini, "s3", 49.0, "stop", 3, None, "stopped by load generator while not connected")  # 9 s
    assert stuck_intervals(load_run(mini.write())).empty


def test_every_phase_a_stuck_subscriber_spends_is_counted(mini):
    """Dropped inside a fault and never back: the fault phase, after the heal, and steady
    state once the heal window is over (--heal-window 10s)."""
    from reports.cli import report_main

    _base(mini).fault("f1", "down", "redis", 5, 25)
    _conn(mini, "s3", 0.5, "connect", 1, "r2")
    _conn(mini, "s3", 6.0, "disconnect", 1, "r2", "closed")
    _conn(mini, "s3", 52.0, "stop", 1, None, "stopped by load generator while not connected")
    _conn(mini, "s4", 1.0, "connect_fail", 1)  # never connected at all: steady first, then the rest
    root = mini.write()
    assert report_main([str(root), "-q", "--heal-window", "10s"]) == 1
    import json

    summary = json.loads((root / "summary.json").read_text())
    (row,) = [r for r in summary["slo"] if r["metric"] == "ws_subscribers_unconnected"]
    assert row["observed"] == 2 and row["verdict"] == "fail"
    from reports.delivery import DeliveryOptions
    from reports.metrics import samples

    table = samples(load_run(root), "ws_subscribers_unconnected", DeliveryOptions(heal_window_s=10.0))
    by = {(s, str(p)) for s, p in zip(table["sub"], table["phase"])}
    assert by == {(sub, phase) for sub in ("s3", "s4") for phase in ("fault", "after_heal", "steady")}
    assert set(table.loc[table["sub"] == "s4", "reason"]) == {"connect"}
