"""A padded payload (--payload-size) that arrived cut short or altered is corrupted:
the delivery check fails on it, names the frame, and older records without the
`intact` column still read."""

from __future__ import annotations

from reports import delivery
from reports.records import load_run
from reports.check import Verdict


def test_delivery_counts_a_corrupted_payload_and_fails(mini):
    mini.connect("a", "u1", 0)
    mini.connect("b", "u1", 0)
    mini.publish("k1", 10, user="u1")
    mini.recv("a", "u1", "k1", 10.05, intact=True)
    mini.recv("b", "u1", "k1", 10.05, intact=False)
    result = delivery.check(load_run(mini.write()))
    assert result.verdict is Verdict.FAIL
    assert result.details["counts"]["corrupted"] == 1 and result.details["counts"]["intact_checked"] == 2
    assert "1 corrupted (payload cut short or altered)" in result.summary
    assert result.details["corrupted_examples"][0]["sub"] == "b"


def test_records_without_the_intact_column_still_read(mini):
    mini.connect("a", "u1", 0)
    mini.publish("k1", 10, user="u1")
    mini.recv("a", "u1", "k1", 10.05)
    root = mini.write()
    path = root / "records" / "w0" / "recv.csv"
    lines = path.read_text().splitlines()
    path.write_text("\r\n".join(line.rsplit(",", 1)[0] for line in lines) + "\r\n")
    assert "intact" not in path.read_text().splitlines()[0]
    run = load_run(root)
    assert run.recv["intact"].isna().all()
    assert delivery.check(run).verdict is Verdict.PASS
