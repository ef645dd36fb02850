"""The order checker: real-time order without server ids, per-publisher sequence and
server ids, on hand-written histories (both directions, edge cases) and against a
brute-force oracle on random streams."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reports import delivery, order
from reports.records import load_run
from reports.thresholds import parse, resolve
from reports.check import Verdict
from reports.verdict import evaluate_run


def analyze(path):
    return delivery.analyze(load_run(path))


def realtime(path):
    return analyze(path).order.summaries[order.REALTIME]


# -- real-time order -------------------------------------------------------------------

def test_message_acknowledged_before_another_was_sent_must_arrive_first(mini):
    mini.connect("a", "u1", 0)
    mini.publish("w0-1", 10, user="u1", ack_after=0.02)   # acknowledged at 10.02
    mini.publish("w0-2", 11, user="u1")                   # sent at 11, after that
    mini.recv("a", "u1", "w0-2", 11.05).recv("a", "u1", "w0-1", 11.06)
    a = analyze(mini.write())
    rt = a.order.summaries[order.REALTIME]
    assert (rt.judged, rt.violations, rt.by_phase["steady"]) == (1, 1, 1)
    assert a.counts.out_of_order == 1
    (v,) = a.out_of_order.to_dict(orient="records")
    assert (v["key"], v["behind"], v["sub"]) == ("w0-1", "w0-2", "a")
    assert v["margin_ms"] == pytest.approx(980.0, abs=0.01)
    assert rt.examples[0]["key"] == "w0-1" and rt.worst_subscribers == [{"sub": "a", "violations": 1}]


def test_the_same_messages_in_order_are_judged_and_pass(mini):
    mini.connect("a", "u1", 0)
    mini.publish("w0-1", 10, user="u1")
    mini.publish("w0-2", 11, user="u1")
    mini.recv("a", "u1", "w0-1", 10.05).recv("a", "u1", "w0-2", 11.05)
    rt = realtime(mini.write())
    assert (rt.checked, rt.judged, rt.violations) == (True, 1, 0)


def test_concurrent_publishes_may_arrive_either_way(mini):
    # w0-2 was sent while w0-1 was still waiting for its acknowledgement.
    mini.connect("a", "u1", 0)
    mini.publish("w0-1", 10, user="u1", ack_after=0.5)
    mini.publish("w0-2", 10.2, user="u1", ack_after=0.02)
    mini.recv("a", "u1", "w0-2", 10.25).recv("a", "u1", "w0-1", 10.3)
    a = analyze(mini.write())
    s = a.order.summaries
    assert s[order.REALTIME].violations == 0 and s[order.REALTIME].judged == 1
    # The publisher's sequence and the ids were inverted: counted, as information only.
    assert s[order.SEQUENCE].violations == 1 and not s[order.SEQUENCE].required
    assert s[order.IDS].violations == 1 and not s[order.IDS].required
    assert (a.counts.out_of_order, a.counts.out_of_sequence, a.counts.out_of_id_order) == (0, 1, 1)


def test_sent_exactly_at_the_acknowledgement_is_no_violation(mini):
    mini.connect("a", "u1", 0)
    mini.publish("w0-1", 10, user="u1", ack_after=0.5)
    mini.publish("w0-2", 10.5, user="u1")                 # ts_sent == the first one's ts_ack
    mini.publish("w0-3", 10.500001, user="u1")            # one microsecond later is
    mini.recv("a", "u1", "w0-2", 10.6).recv("a", "u1", "w0-1", 10.7)
    mini.connect("b", "u1", 0)
    mini.recv("b", "u1", "w0-3", 10.6).recv("b", "u1", "w0-1", 10.7)
    rt = realtime(mini.write())
    assert rt.violations == 1 and rt.examples[0]["sub"] == "b"


def test_unknown_outcome_is_never_the_late_one_but_can_overtake(mini):
    mini.connect("a", "u1", 0)
    mini.connect("b", "u2", 0)
    # a: the unknown publish has no acknowledgement, so nothing can be late against it.
    mini.publish("w0-1", 10, user="u1", outcome="unknown")
    mini.publish("w0-2", 20, user="u1")
    mini.recv("a", "u1", "w0-2", 20.05).recv("a", "u1", "w0-1", 20.1)
    # b: an unknown publish sent after an acknowledged one and received before it.
    mini.publish("w0-3", 30, user="u2")
    mini.publish("w0-4", 31, user="u2", outcome="unknown")
    mini.recv("b", "u2", "w0-4", 31.05).recv("b", "u2", "w0-3", 31.1)
    rt = realtime(mini.write())
    assert rt.violations == 1 and rt.examples[0]["key"] == "w0-3" and rt.examples[0]["behind"] == "w0-4"
    assert rt.judged == 1  # only w0-3: w0-1 has no acknowledgement, w0-2 and w0-4 came first


def test_a_failed_publish_that_arrived_anyway_can_overtake(mini):
    mini.connect("a", "u1", 0)
    mini.publish("w0-1", 10, user="u1")
    mini.publish("w0-2", 12, user="u1", outcome="fail")
    mini.recv("a", "u1", "w0-2", 12.05).recv("a", "u1", "w0-1", 12.1)
    assert realtime(mini.write()).violations == 1


def test_replays_are_not_judged(mini):
    mini.connect("a", "u1", 0, conn=1, until=20)
    mini.connect("a", "u1", 21, conn=2)
    mini.publish("w0-1", 10, user="u1")
    mini.publish("w0-2", 11, user="u1")
    mini.recv("a", "u1", "w0-2", 11.05)
    mini.recv("a", "u1", "w0-1", 21.1, conn=2, replay=True)  # a resume may bring it in any order
    rt = realtime(mini.write())
    assert (rt.judged, rt.violations) == (0, 0) and not rt.checked
    assert "no subscriber received a message after another" in rt.reason


def test_a_new_connection_is_a_new_stream(mini):
    mini.connect("a", "u1", 0, conn=1, until=20)
    mini.connect("a", "u1", 21, conn=2)
    mini.publish("w0-1", 10, user="u1")
    mini.publish("w0-2", 11, user="u1")
    mini.publish("w0-3", 22, user="u1")
    mini.publish("w0-4", 23, user="u1")
    mini.recv("a", "u1", "w0-2", 11.05)                  # conn 1
    mini.recv("a", "u1", "w0-1", 21.2, conn=2)           # live on conn 2: re-sent first, no violation
    mini.recv("a", "u1", "w0-4", 23.05, conn=2).recv("a", "u1", "w0-3", 23.1, conn=2)  # but this is one
    rt = realtime(mini.write())
    assert rt.violations == 1 and rt.examples[0]["key"] == "w0-3" and rt.examples[0]["conn"] == 2


def test_duplicates_and_misrouted_frames_are_not_judged(mini):
    mini.connect("a", "u1", 0)
    mini.publish("w0-1", 10, user="u1")
    mini.publish("w0-2", 11, user="u2")     # another user's message
    mini.publish("w0-3", 12, user="u1")
    mini.recv("a", "u1", "w0-1", 10.05)
    mini.recv("a", "u1", "w0-2", 11.05)     # misrouted: not a message for this subscriber
    mini.recv("a", "u1", "w0-3", 12.05)
    mini.recv("a", "u1", "w0-1", 12.1)      # a duplicate of the first: the first copy is what counts
    a = analyze(mini.write())
    assert a.counts.misrouted == 1 and a.counts.duplicated == 1
    assert a.order.summaries[order.REALTIME].violations == 0


def test_equal_receive_times_keep_the_file_order(mini):
    mini.connect("a", "u1", 0)
    mini.publish("w0-1", 10, user="u1")
    mini.publish("w0-2", 11, user="u1")
    mini.recv("a", "u1", "w0-2", 11.5).recv("a", "u1", "w0-1", 11.5)  # same time, w0-2 first in the file
    assert realtime(mini.write()).violations == 1


def test_keys_without_a_sequence_skip_the_sequence_order_only(mini):
    mini.connect("a", "u1", 0)
    mini.publish("alpha", 10, user="u1")
    mini.publish("beta", 11, user="u1")
    mini.recv("a", "u1", "beta", 11.05).recv("a", "u1", "alpha", 11.1)
    s = analyze(mini.write()).order.summaries
    assert s[order.REALTIME].violations == 1
    assert not s[order.SEQUENCE].checked and "not <publisher>-<seq>" in s[order.SEQUENCE].reason


def test_records_without_ids_skip_the_id_order(mini):
    mini.connect("a", "u1", 0)
    mini.publish("w0-1", 10, user="u1", id=None)
    mini.publish("w0-2", 11, user="u1")
    mini.rows["pub"][0]["id"] = mini.rows["pub"][1]["id"] = None
    mini.recv("a", "u1", "w0-2", 11.05, id=None).recv("a", "u1", "w0-1", 11.1, id=None)
    for row in mini.rows["recv"]:
        row["id"] = None
    s = analyze(mini.write()).order.summaries
    assert s[order.REALTIME].violations == 1
    assert not s[order.IDS].checked and "no message ids" in s[order.IDS].reason


def test_per_publisher_sequence_is_per_publisher(mini):
    mini.connect("a", "u1", 0)
    mini.publish("w0-5", 10, user="u1", ack_after=1.0)
    mini.publish("w1-1", 10.1, user="u1", ack_after=1.0)
    mini.publish("w0-6", 10.2, user="u1", ack_after=1.0)
    # w1-1 arrives after w0-6: another publisher's lower number is no inversion.
    mini.recv("a", "u1", "w0-5", 11.5).recv("a", "u1", "w0-6", 11.6).recv("a", "u1", "w1-1", 11.7)
    s = analyze(mini.write()).order.summaries
    assert s[order.SEQUENCE].judged == 1 and s[order.SEQUENCE].violations == 0


def test_phase_is_the_worse_of_send_and_receipt(mini):
    mini.connect("a", "u1", 0)
    mini.fault("f1", "partition", "r2", 20, 25)
    mini.publish("w0-1", 19, user="u1", instance="r2")  # sent in steady state ...
    mini.publish("w0-2", 19.5, user="u1")
    mini.recv("a", "u1", "w0-2", 19.55).recv("a", "u1", "w0-1", 21)  # ... received late, inside the fault
    mini.publish("w0-3", 70, user="u1")                 # long after the heal window: steady
    mini.publish("w0-4", 71, user="u1")
    mini.recv("a", "u1", "w0-4", 71.05).recv("a", "u1", "w0-3", 71.1)
    mini.meta["end"] = mini.meta["start"] + 80
    rt = realtime(mini.write())
    assert rt.by_phase == {"steady": 1, "fault": 1, "after_heal": 0}


def test_violations_are_counted_per_replica_pair(mini):
    mini.connect("a", "u1", 0, instance="r1")
    mini.connect("b", "u1", 0, instance="r2")
    mini.publish("w0-1", 10, user="u1", instance="r3")
    mini.publish("w0-2", 11, user="u1", instance="r1")
    for sub, inst in (("a", "r1"), ("b", "r2")):
        mini.recv(sub, "u1", "w0-2", 11.05, instance=inst).recv(sub, "u1", "w0-1", 11.1, instance=inst)
    pairs = analyze(mini.write()).order.by_pair
    late = pairs[pairs["late_realtime"] > 0]
    got = {(str(r.origin), str(r.instance)): int(r.late_realtime) for r in late.itertuples()}
    assert got == {("r3", "r1"): 1, ("r3", "r2"): 1}


# -- the threshold, the verdict and the report -----------------------------------------

def test_default_target_fails_a_steady_violation_and_says_which_order(mini):
    mini.connect("a", "u1", 0)
    mini.publish("w0-1", 10, user="u1")
    mini.publish("w0-2", 11, user="u1")
    mini.recv("a", "u1", "w0-2", 11.05).recv("a", "u1", "w0-1", 11.1)
    run_dir = mini.write()
    outcome = evaluate_run(run_dir)
    (check,) = [c for c in outcome.checks if "delivery_out_of_order" in c.name]
    assert check.name == "slo delivery_out_of_order{phase:steady}: count==0"
    assert check.verdict is Verdict.FAIL and outcome.exit_code == 1
    assert check.summary.startswith("real-time order: count = 1")
    summary = json.loads((run_dir / "summary.json").read_text())
    doc = summary["delivery"]["order"]
    assert doc["orders"]["realtime"]["violations"] == 1
    assert doc["orders"]["realtime"]["examples"][0]["key"] == "w0-1"
    assert doc["summary"].startswith("order: real-time 1 late of 1")
    junit = (run_dir / "junit.xml").read_text()
    assert "real-time order: count = 1" in junit


def test_default_target_passes_a_violation_inside_a_fault(mini):
    mini.connect("a", "u1", 0)
    mini.fault("f1", "partition", "r2", 9, 12)
    mini.publish("w0-1", 10, user="u1")
    mini.publish("w0-2", 11, user="u1")
    mini.recv("a", "u1", "w0-2", 11.05).recv("a", "u1", "w0-1", 11.1)
    mini.publish("w0-3", 50, user="u1")
    mini.publish("w0-4", 51, user="u1")
    mini.recv("a", "u1", "w0-3", 50.05).recv("a", "u1", "w0-4", 51.05)
    outcome = evaluate_run(mini.write())
    (check,) = [c for c in outcome.checks if "delivery_out_of_order" in c.name]
    assert check.verdict is Verdict.PASS, check.summary
    # Anyone may hold every phase to it.
    (strict,) = [c for c in evaluate_run(mini.root, ["delivery_out_of_order: count==0"]).checks
                 if c.name == "slo delivery_out_of_order: count==0"]
    assert strict.verdict is Verdict.FAIL


def test_nothing_judged_is_unknown_not_a_pass(mini):
    mini.connect("a", "u1", 0)
    mini.publish("w0-1", 10, user="u1")
    mini.recv("a", "u1", "w0-1", 10.05)
    outcome = evaluate_run(mini.write())
    (check,) = [c for c in outcome.checks if "delivery_out_of_order" in c.name]
    assert check.verdict is Verdict.UNKNOWN and "no samples" in check.summary


def test_the_default_targets_include_the_steady_order():
    targets = resolve()
    assert any(t.metric == "delivery_out_of_order" and dict(t.tags) == {"phase": "steady"} for t in targets)
    assert parse("delivery_out_of_sequence{path:cross}: rate<0.5").metric == "delivery_out_of_sequence"
    assert parse("delivery_out_of_id_order: count==0").metric == "delivery_out_of_id_order"


def test_report_and_cli_table_name_the_orders(mini, capsys):
    from reports.cli import report_main

    mini.connect("a", "u1", 0)
    mini.publish("w0-1", 10, user="u1")
    mini.publish("w0-2", 11, user="u1")
    mini.recv("a", "u1", "w0-2", 11.05).recv("a", "u1", "w0-1", 11.1)
    run_dir = mini.write()
    assert report_main([str(run_dir)]) == 1
    out = capsys.readouterr().out
    assert "order: real-time 1 late of 1 (steady 1, fault 0, after heal 0)" in out
    flat = " ".join(out.split())  # the order line wraps at the terminal's width
    assert "per-publisher sequence" in flat and "server ids" in flat
    page = (run_dir / "report.html").read_text()
    assert 'id="order"' in page and "w0-1" in page and (run_dir / "csv" / "order_violations.csv").exists()


# -- the algorithm against a brute-force oracle ---------------------------------------

def _oracle(d: order.Deliveries) -> dict[str, np.ndarray]:
    """Quadratic and obvious: for each delivery, look at every one received before it
    on its stream."""
    n = len(d.ts)
    conn = np.nan_to_num(d.conn, nan=-1.0)
    late = {o: np.zeros(n, bool) for o in order.ORDERS}
    judged = {o: np.zeros(n, bool) for o in order.ORDERS}
    for i in range(n):
        before = [j for j in range(n) if d.sub[j] == d.sub[i] and conn[j] == conn[i]
                  and (d.ts[j], d.row[j]) < (d.ts[i], d.row[i])]
        sent = [round(d.sent[j] * 1e6) for j in before if not np.isnan(d.sent[j])]
        if not np.isnan(d.ack[i]) and sent:
            judged[order.REALTIME][i] = True
            late[order.REALTIME][i] = max(sent) > round(d.ack[i] * 1e6)
        mine = [d.seq[j] for j in before if d.publisher[j] == d.publisher[i]]
        if d.publisher[i] >= 0 and mine:
            judged[order.SEQUENCE][i] = True
            late[order.SEQUENCE][i] = max(mine) > d.seq[i]
        ids = [d.id[j] for j in before if not np.isnan(d.id[j])]
        if not np.isnan(d.id[i]) and ids:
            judged[order.IDS][i] = True
            late[order.IDS][i] = max(ids) > d.id[i]
    return {"judged": judged, "late": late}


@pytest.mark.parametrize("seed", range(12))
def test_vectorised_order_matches_the_oracle(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 160))
    t0 = 1_763_900_000.0
    sent = np.round(t0 + rng.uniform(0, 5, n), 6)
    ack = np.round(sent + rng.exponential(0.3, n), 6)
    ack[rng.random(n) < 0.15] = np.nan                        # unknown or failed outcomes
    sent[rng.random(n) < 0.05] = np.nan
    ts = np.round(np.nan_to_num(sent, nan=t0 + 2) + rng.exponential(0.4, n), 6)
    ts[rng.random(n) < 0.1] = ts[0]                           # ties on the receive time
    ids = np.where(rng.random(n) < 0.2, np.nan, rng.integers(1, 50, n).astype(float))
    conn = np.where(rng.random(n) < 0.1, np.nan, rng.integers(1, 3, n).astype(float))
    d = order.Deliveries(
        sub=rng.integers(0, 4, n), conn=conn, ts=ts, row=rng.permutation(n), sent=sent, ack=ack,
        key=np.arange(n), publisher=np.where(rng.random(n) < 0.1, -1, rng.integers(0, 3, n)),
        seq=rng.integers(0, 40, n), id=ids, origin=rng.integers(2, 5, n), instance=rng.integers(2, 5, n),
        path=rng.integers(0, 3, n), sent_phase=rng.integers(0, 3, n), recv_phase=rng.integers(0, 3, n))
    d = order.Deliveries(**{**d.__dict__, "seq": np.where(d.publisher < 0, -1, d.seq)})
    vocab = ["?", "offline", "r1", "r2", "r3"]
    got = order.analyze(d, sub_names=np.array([f"s{i}" for i in range(4)], dtype=object),
                        key_names=np.array([f"k{i}" for i in range(n)], dtype=object), vocab=vocab,
                        path_names=("same", "cross", "unknown"), has_acks=True)
    want = _oracle(d)
    keys = got.samples["key"].to_numpy()
    for o in order.ORDERS:
        assert np.array_equal(got.samples[f"judged_{o}"].to_numpy(), want["judged"][o][keys]), o
        assert np.array_equal(got.samples[f"late_{o}"].to_numpy(), want["late"][o][keys]), o
        assert got.summaries[o].violations == int(want["late"][o].sum())
    # Each violation names a delivery received before it on its stream that proves it.
    v = got.violations[got.violations["order"] == order.REALTIME]
    for row in v.itertuples():
        a, b = int(row.key[1:]), int(row.behind[1:])
        assert (d.sub[a], np.nan_to_num(d.conn, nan=-1)[a]) == (d.sub[b], np.nan_to_num(d.conn, nan=-1)[b])
        assert (d.ts[b], d.row[b]) < (d.ts[a], d.row[a]) and d.sent[b] > d.ack[a]


def test_prefix_max_restarts_at_every_stream():
    starts = np.array([1, 0, 0, 1, 0, 0, 1], dtype=bool)
    value = np.array([5, -1, 3, 2, 7, -1, 4], dtype="int64")
    best, holder = order.prefix_max(starts, value)
    assert best.tolist() == [-1, 5, 5, -1, 2, 7, -1]
    assert holder.tolist() == [-1, 0, 0, -1, 3, 4, -1]
    best, holder = order.prefix_max(np.array([1, 0], bool), np.array([-1, 3], "int64"))
    assert best.tolist() == [-1, -1] and holder.tolist() == [-1, -1]
