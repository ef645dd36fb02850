"""The delivery checker: exact counts on hand-written and synthetic histories."""

from __future__ import annotations

import pytest

from reports import delivery
from reports.delivery import DeliveryOptions
from reports.records import load_run
from reports.check import Verdict


def analyze(path, **options):
    return delivery.analyze(load_run(path), DeliveryOptions(**options) if options else None)


# -- the rules, one small history each --------------------------------------------------

def test_connected_subscriber_that_got_the_message_is_not_lost(mini):
    mini.connect("a", "u1", 0)
    mini.publish("k1", 10, user="u1")
    mini.recv("a", "u1", "k1", 10.05)
    c = analyze(mini.write()).counts
    assert (c.expected_live, c.delivered_live, c.lost_live, c.lost_eventual) == (1, 1, 0, 0)


def test_acknowledged_message_never_seen_is_lost_live_and_eventually(mini):
    mini.connect("a", "u1", 0)
    mini.publish("k1", 10, user="u1")
    c = analyze(mini.write()).counts
    assert (c.lost_live, c.lost_eventual) == (1, 1)
    assert delivery.check(load_run(mini.root)).verdict is Verdict.FAIL


def test_disconnected_subscriber_is_owed_only_eventually(mini):
    mini.connect("b", "u1", 0, conn=1, until=9)
    mini.connect("b", "u1", 20, conn=2)
    mini.publish("k1", 10, user="u1")
    c = analyze(mini.write()).counts
    # Published while b was away: not owed live, owed by resume, and the resume never came.
    assert (c.expected_live, c.lost_live, c.expected_eventual, c.lost_eventual) == (0, 0, 1, 1)


def test_replay_after_reconnect_makes_eventual_delivery(mini):
    mini.connect("b", "u1", 0, conn=1, until=9)
    mini.connect("b", "u1", 20, conn=2)
    mini.publish("k1", 10, user="u1")
    mini.recv("b", "u1", "k1", 20.1, conn=2, replay=True)
    c = analyze(mini.write()).counts
    assert (c.lost_live, c.lost_eventual, c.duplicated) == (0, 0, 0)


def test_live_connected_subscriber_that_only_got_a_replay_is_lost_live_only(mini):
    mini.connect("e", "u1", 0, conn=1, until=30)
    mini.connect("e", "u1", 32, conn=2)
    mini.publish("k1", 10, user="u1")
    mini.recv("e", "u1", "k1", 32.1, conn=2, replay=True)
    c = analyze(mini.write()).counts
    assert (c.expected_live, c.lost_live, c.lost_eventual) == (1, 1, 0)


def test_subscriber_that_connects_after_the_publish_is_not_addressed(mini):
    mini.connect("late", "u1", 30)
    mini.publish("k1", 10, user="u1")
    c = analyze(mini.write()).counts
    assert (c.expected_live, c.expected_eventual, c.lost_eventual) == (0, 0, 0)


def test_subscriber_that_leaves_within_the_grace_is_not_addressed(mini):
    mini.connect("gone", "u1", 0, until=10.5)  # ack at 10.02 + 1 s grace > 10.5
    mini.publish("k1", 10, user="u1")
    c = analyze(mini.write()).counts
    assert (c.expected_live, c.expected_eventual) == (0, 0)


def test_grace_option_decides_live_expectation(mini):
    mini.connect("a", "u1", 0, conn=1, until=10.5)
    mini.connect("a", "u1", 12, conn=2)
    mini.publish("k1", 10, user="u1")
    path = mini.write()
    assert analyze(path).counts.expected_live == 0
    assert analyze(path, grace_s=0.2).counts.expected_live == 1


def test_broadcast_addresses_every_subscriber_and_user_publish_only_that_user(mini):
    for sub, user in (("a", "u1"), ("b", "u1"), ("c", "u2")):
        mini.connect(sub, user, 0)
    mini.publish("k1", 10, user="u1")
    mini.publish("b1", 11)
    c = analyze(mini.write()).counts
    assert c.expected_live == 2 + 3
    assert c.lost_live == 5


def test_duplicate_rules(mini):
    mini.connect("a", "u1", 0, conn=1, until=20)
    mini.connect("a", "u1", 21, conn=2, until=30)
    mini.connect("a", "u1", 31, conn=3)
    for i, key in enumerate(("live2", "overlap", "replay2", "replay23", "livereplay")):
        mini.publish(key, 10 + i, user="u1")
    mini.recv("a", "u1", "live2", 10.1).recv("a", "u1", "live2", 10.2)           # live twice: duplicate
    mini.recv("a", "u1", "overlap", 11.1)
    mini.recv("a", "u1", "overlap", 21.1, conn=2, replay=True)                    # resume overlap: fine
    mini.recv("a", "u1", "replay2", 12.1)
    mini.recv("a", "u1", "replay2", 21.2, conn=2, replay=True)
    mini.recv("a", "u1", "replay2", 21.3, conn=2, replay=True)                    # twice in one replay: duplicate
    mini.recv("a", "u1", "replay23", 13.1)
    mini.recv("a", "u1", "replay23", 21.4, conn=2, replay=True)
    mini.recv("a", "u1", "replay23", 31.1, conn=3, replay=True)                   # next resume again: fine
    mini.recv("a", "u1", "livereplay", 21.5, conn=2, replay=True)
    mini.recv("a", "u1", "livereplay", 21.6, conn=2)                              # live after replay: duplicate
    a = analyze(mini.write())
    assert a.counts.duplicated == 3
    assert a.counts.duplicate_frames == 3
    assert a.counts.resume_overlap_frames == 4  # overlap, replay2 once, replay23 twice
    assert sorted(a.duplicates["key"]) == ["live2", "livereplay", "replay2"]


def test_unexpected_recovered_failed_seen_and_misrouted(mini):
    mini.connect("a", "u1", 0)
    mini.connect("b", "u2", 0)
    mini.publish("unk-seen", 10, user="u1", outcome="unknown")
    mini.publish("unk-lost", 11, user="u1", outcome="unknown")
    mini.publish("failed", 12, user="u1", outcome="fail")
    mini.publish("for-u1", 13, user="u1")
    mini.recv("a", "u1", "unk-seen", 10.1)
    mini.recv("a", "u1", "failed", 12.1)
    mini.recv("a", "u1", "for-u1", 13.1)
    mini.recv("b", "u2", "for-u1", 13.1)         # another user's message
    mini.recv("a", "u1", "ghost", 14.0)
    mini.recv("b", "u2", "ghost", 14.0)
    mini.recv("a", "u1", None, 15.0)             # no key: untraceable
    c = analyze(mini.write()).counts
    assert c.recovered == 1          # unknown outcome, seen
    assert c.failed_seen == 1
    assert c.misrouted == 1
    assert c.unexpected == 2         # 'ghost' and the keyless frame
    assert c.unexpected_frames == 3
    assert c.lost_eventual == 0      # unknown and failed publishes are never owed


def test_late_follows_the_option(mini):
    mini.connect("a", "u1", 0)
    mini.publish("k1", 10, user="u1")
    mini.publish("k2", 11, user="u1")
    mini.recv("a", "u1", "k1", 10.05).recv("a", "u1", "k2", 12.5)
    path = mini.write()
    assert analyze(path).counts.late == 1
    assert analyze(path, late_after_s=2.0).counts.late == 0


def test_out_of_order_counts_live_inversions_only(mini):
    mini.connect("a", "u1", 0, conn=1, until=30)
    mini.connect("a", "u1", 31, conn=2)
    for i in range(1, 6):
        mini.publish(f"k{i}", 10 + i * 0.1, user="u1")
    mini.recv("a", "u1", "k1", 11).recv("a", "u1", "k3", 11.1).recv("a", "u1", "k2", 11.2)  # 2 after 3
    mini.recv("a", "u1", "k5", 11.3)
    mini.recv("a", "u1", "k4", 31.1, conn=2, replay=True)  # replays come in any order
    a = analyze(mini.write())
    assert a.counts.out_of_order == 1
    assert list(a.out_of_order["key"]) == ["k2"]


def test_same_and_cross_instance_latency(mini):
    mini.connect("a", "u1", 0, instance="r1")
    mini.connect("b", "u1", 0, instance="r2")
    mini.publish("k1", 10, user="u1", instance="r1")
    mini.recv("a", "u1", "k1", 10.010, instance="r1").recv("b", "u1", "k1", 10.050, instance="r2")
    lat = analyze(mini.write()).latency.set_index("path")["latency_ms"]
    assert lat["same"] == pytest.approx(10.0, abs=0.01)
    assert lat["cross"] == pytest.approx(50.0, abs=0.01)


def test_phases_and_matrix(mini):
    mini.connect("a", "u1", 0, instance="r2")
    mini.publish("steady", 5, user="u1", instance="r1")
    mini.publish("inside", 15, user="u1", instance="r1")
    mini.publish("healing", 25, user="u1", instance="r3")
    mini.publish("later", 55, user="u1", instance="r1")
    mini.recv("a", "u1", "later", 55.05, instance="r2")
    mini.fault("f1", "partition", "r2", 10, 20)
    a = analyze(mini.write(), heal_window_s=30.0)
    phase = a.by_phase["lost_live"].to_dict()
    assert phase == {"steady": 1, "fault": 1, "after_heal": 1}
    m = a.matrix.groupby(["origin", "sub_instance"], observed=True)["lost_live"].sum().to_dict()
    assert m == {("r1", "r2"): 2, ("r3", "r2"): 1}
    (rec,) = a.recovery
    assert (rec.lost_live_inside, rec.lost_live_after_heal) == (1, 1)


def test_connection_numbers_missing_pair_by_order(mini):
    mini.connect("a", "u1", 0, conn=1, until=9)
    mini.connect("a", "u1", 20, conn=2)
    for row in mini.rows["conn"]:
        row["conn"] = None
    mini.publish("k1", 10, user="u1")
    c = analyze(mini.write()).counts
    assert (c.expected_live, c.expected_eventual) == (0, 1)


def test_no_connection_events_is_unknown(mini):
    mini.publish("k1", 10, user="u1")
    mini.recv("a", "u1", "k1", 10.1)
    result = delivery.check(load_run(mini.write()))
    assert result.verdict is Verdict.UNKNOWN
    assert "conn.csv" in result.summary


def test_no_publishes_is_unknown(mini):
    mini.connect("a", "u1", 0)
    assert delivery.check(load_run(mini.write())).verdict is Verdict.UNKNOWN


def test_live_loss_inside_a_fault_alone_does_not_fail(mini):
    mini.connect("a", "u1", 0, conn=1, until=30)
    mini.connect("a", "u1", 31, conn=2)
    mini.publish("k1", 15, user="u1")
    mini.recv("a", "u1", "k1", 31.1, conn=2, replay=True)
    mini.publish("k2", 50, user="u1")
    mini.recv("a", "u1", "k2", 50.05, conn=2)
    mini.fault("f1", "partition", "r1", 10, 20)
    result = delivery.check(load_run(mini.write()))
    assert result.verdict is Verdict.PASS
    assert result.details["counts"]["lost_live"] == 1


# -- synthetic runs: every category at once, counts known by construction -------------

CATEGORIES = ("publishes", "acknowledged", "failed", "unknown", "lost_live", "lost_eventual", "duplicated",
              "unexpected", "recovered", "late", "out_of_order", "out_of_sequence", "out_of_id_order", "misrouted",
              "failed_seen")


@pytest.mark.parametrize("category", CATEGORIES)
def test_synthetic_counts_match_truth(full_run, category):
    counts = delivery.analyze(load_run(full_run.run_dir)).counts
    assert getattr(counts, category) == getattr(full_run.truth, category)


def test_synthetic_truth_is_not_trivial(full_run):
    t = full_run.truth
    # The partition must have done damage, or the phase tests below prove nothing.
    assert t.lost_live_by_phase.get("fault", 0) > 20
    # Both kinds of loss, and different counts, so a checker that confused them fails:
    # more lost live than for good means some live losses were recovered by a resume.
    assert t.lost_live > t.lost_eventual > 0
    assert t.recovered > 0 and t.duplicated > 0 and t.late > 0
    # Every injected swap breaks real-time order; concurrent sends also invert the sequence.
    assert t.out_of_order >= full_run.spec.out_of_order > 0 and t.out_of_sequence > t.out_of_order


def test_synthetic_loss_by_phase(full_run):
    a = delivery.analyze(load_run(full_run.run_dir))
    for phase in ("steady", "fault", "after_heal"):
        assert a.by_phase.loc[phase, "lost_live"] == full_run.truth.lost_live_by_phase.get(phase, 0)
        assert a.by_phase.loc[phase, "lost_eventual"] == full_run.truth.lost_eventual_by_phase.get(phase, 0)


def test_synthetic_loss_by_replica_pair(full_run):
    a = delivery.analyze(load_run(full_run.run_dir))
    m = a.matrix.groupby(["origin", "sub_instance"], observed=True)["lost_live"].sum()
    found = {k: int(v) for k, v in m.items() if v}
    assert found == full_run.truth.lost_live_by_pair


def test_synthetic_recovery_time(full_run):
    a = delivery.analyze(load_run(full_run.run_dir))
    spec = {f"f{i}": f for i, f in enumerate(full_run.spec.faults, start=1)}
    assert len(a.recovery) == 2
    for rec in a.recovery:
        fault = spec[rec.fault_id]
        assert rec.status == "recovered"
        assert 0 <= rec.first_delivery_s < 1.0
        # Deliveries involving the target stay slow for recovery_s after the heal.
        assert fault.recovery_s - 1.5 <= rec.p99_recovered_s <= fault.recovery_s + 1.5
        assert rec.steady_p99_ms == pytest.approx(55, abs=10)


def test_recovery_check_fails_when_latency_never_returns(tmp_path):
    from tests.synthetic import SyntheticFault, SyntheticSpec, build_run

    fault = SyntheticFault("partition", "r2", 20.0, 5.0, recovery_s=90.0, recovery_factor=8.0)
    run = build_run(tmp_path / "run", SyntheticSpec(seed=9, duration=120.0, faults=(fault,)))
    result = delivery.check_recovery(load_run(run.run_dir))
    assert result.verdict is Verdict.FAIL
    assert "not recovered" in result.summary


def test_clean_synthetic_run_passes(clean_run):
    run = load_run(clean_run.run_dir)
    result = delivery.check(run)
    assert result.verdict is Verdict.PASS, result.summary
    c = delivery.analyze(run).counts
    assert c.lost_eventual == c.lost_live == c.duplicated == c.unexpected == c.out_of_order == 0
    assert c.recovered == clean_run.truth.recovered > 0
    assert c.resume_overlap_frames > 0  # flappers resumed, with the expected overlap


def test_truncated_history_still_checks(tmp_path):
    from tests.synthetic import SyntheticSpec, build_run

    run = build_run(tmp_path / "run", SyntheticSpec(seed=4, faults=(), truncate_last_line=True))
    data = load_run(run.run_dir)
    assert any("truncated" in w for w in data.warnings)
    assert len(data.recv) == run.truth.records["recv"] - 1
    # The cut frame is the only difference: at most one delivery goes missing.
    assert delivery.analyze(data).counts.lost_eventual <= 1
