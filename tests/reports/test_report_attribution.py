"""The replica attribution note: one line when records do not say where traffic landed,
and nothing when they all do."""

from __future__ import annotations

import json

import pytest
from report_support import MiniRun

from common.state import REPLICA_HEADER
from reports import attribution
from reports.delivery import analyze, check
from reports.records import load_run
from reports.verdict import evaluate_run


def _run(tmp_path, sub_instance, pub_instance, subs=3):
    m = MiniRun(tmp_path)
    for i in range(subs):
        m.connect(f"s{i}", "u1", at=1, instance=sub_instance(i), until=50)
    for k in range(4):
        key = f"w0-{k}"
        m.publish(key, at=10 + k, user="u1", instance=pub_instance(k))
        for i in range(subs):
            m.recv(f"s{i}", "u1", key, at=10.1 + k, instance=sub_instance(i) or None, origin=pub_instance(k) or None)
    return m.write()


def test_the_header_name_is_the_harness_s():
    assert attribution.REPLICA_HEADER == REPLICA_HEADER


def test_named_everywhere_says_nothing(tmp_path):
    run = load_run(_run(tmp_path, lambda i: f"r{i % 2 + 1}", lambda k: "r1"))
    a = analyze(run)
    assert a.attribution.available and a.attribution.note is None
    assert a.attribution.replicas == ("r1", "r2")
    assert not any("attribution" in n for n in a.notes)
    assert "attribution" not in check(run).summary


def test_nothing_named_gives_one_unavailable_line_in_every_output(tmp_path):
    run_dir = _run(tmp_path, lambda i: "", lambda k: "")
    run = load_run(run_dir)
    a = analyze(run)
    note = a.attribution.note
    assert not a.attribution.available
    assert note == (f"replica attribution unavailable: none of 3 connections and 4 acknowledged publishes named "
                    f"a replica (no {REPLICA_HEADER} header (the load did not go through gauntlet's load balancer, "
                    "e.g. --host to another one) and no welcome frame or ack naming a replica); "
                    "no replica matrix, no same/cross split")
    assert a.notes.count(note) == 1
    result = check(run)
    assert result.summary.endswith(note) and result.details["notes"].count(note) == 1
    verdict = evaluate_run(run_dir)
    summary = json.loads(verdict.summary_path.read_text())
    assert summary["delivery"]["attribution"]["note"] == note and note in summary["delivery"]["notes"]
    # The delivery verdict itself is unaffected: nothing was lost.
    assert summary["delivery"]["counts"]["lost_eventual"] == 0


@pytest.mark.parametrize("sub, pub, start", [
    (lambda i: "", lambda k: "r1", "replica attribution unavailable for subscribers: none of 3 connections"),
    (lambda i: "r1", lambda k: "", "replica attribution unavailable for publishes: none of 4 acknowledged"),
    (lambda i: "r1" if i else "", lambda k: "r1" if k else "",
     "replica attribution partial: 1 of 3 connections and 1 of 4 acknowledged publishes without a replica"),
])
def test_one_sided_and_partial_attribution_say_which_side(tmp_path, sub, pub, start):
    a = analyze(load_run(_run(tmp_path, sub, pub)))
    assert a.attribution.note.startswith(start), a.attribution.note


def test_the_html_report_shows_the_line_instead_of_a_matrix_of_question_marks(tmp_path):
    from reports.html import build_report

    path = build_report(_run(tmp_path, lambda i: "", lambda k: ""))
    html = path.read_text()
    assert "replica attribution unavailable: none of 3 connections" in html
    assert "cross-instance delivery matrix" not in html
    named = build_report(_run(tmp_path / "named", lambda i: "r1", lambda k: "r2"))
    assert "cross-instance delivery matrix" in named.read_text()
