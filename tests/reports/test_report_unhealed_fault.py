"""A fault still on when the load ended (a partition by hand, healed after the load
stopped) leaves messages nobody could judge: the subscribers left before the system
got its chance to deliver them. They are unjudged (verdict unknown, naming the fault),
never "lost for good"; the same loss with the subscriber still there after the heal
is still a failure (the negative control)."""

from __future__ import annotations

from report_support import MiniRun

from reports import delivery, faults
from reports.records import load_run
from reports.check import Verdict


def partition_run(tmp_path, heal_at: float, outcome: str = "ok", stay_until: float = 30.0):
    run = MiniRun(tmp_path)
    run.connect("s1", "u1", at=0.0, instance="r2", until=stay_until)
    run.connect("s2", "u2", at=0.0, instance="r1", until=stay_until)
    run.publish("k1", at=2.0, user="u1", instance="r1")
    run.recv("s1", "u1", "k1", at=2.05, instance="r2")
    run.publish("k2", at=15.0, user="u1", instance="r1")  # r2 is cut off: never arrives
    run.publish("k3", at=16.0, user="u2", instance="r1")
    run.recv("s2", "u2", "k3", at=16.05, instance="r1")
    run.fault("f1", "partition", "r2", start=10.0, end=heal_at, outcome=outcome)
    run.meta["end"] = run.meta["start"] + 45
    return load_run(run.write())


def test_a_subscriber_that_left_before_the_heal_is_not_lost_for_good(tmp_path):
    result = delivery.check(partition_run(tmp_path, heal_at=40.0))
    assert result.verdict is Verdict.UNKNOWN, result.summary
    counts = result.details["counts"]
    assert counts["lost_eventual"] == 0 and counts["unjudged"] == 1
    assert "cannot be judged" in result.summary and "f1" in result.summary
    assert result.details["unjudged_faults"] == ["f1"]


def test_a_fault_never_healed_leaves_its_messages_unjudged(tmp_path):
    run = partition_run(tmp_path, heal_at=None, outcome="active")
    result = delivery.check(run)
    assert result.verdict is Verdict.UNKNOWN and result.details["counts"]["unjudged"] == 1
    assert faults.check(run).verdict is Verdict.UNKNOWN


def test_a_run_killed_during_a_fault_is_unknown_not_failed(tmp_path):
    run = partition_run(tmp_path, heal_at=31.0, outcome="interrupted")
    assert delivery.check(run).verdict is Verdict.UNKNOWN
    result = faults.check(run)
    assert result.verdict is Verdict.UNKNOWN and "interrupted" in result.summary
    assert delivery.check_recovery(run).verdict is Verdict.UNKNOWN


def test_negative_control_the_same_loss_after_a_heal_the_subscriber_saw_fails(tmp_path):
    result = delivery.check(partition_run(tmp_path, heal_at=20.0))
    assert result.verdict is Verdict.FAIL and "1 lost for good" in result.summary
    assert result.details["counts"]["unjudged"] == 0
