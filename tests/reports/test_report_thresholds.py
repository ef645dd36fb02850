"""Threshold expressions: what parses, what each mistake says, and what is measured."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from reports import delivery, metrics
from reports.phases import PHASES, phase_seconds
from reports.records import load_run
from reports.thresholds import DEFAULT_SLO, ThresholdError, evaluate, holds, observed_by_phase, parse, resolve
from reports.check import Verdict


@pytest.mark.parametrize("expr, metric, tags, conditions", [
    ("http_req_duration: p(95)<500", "http_req_duration", (), [("p(95)", "<", 500.0)]),
    ("http_req_duration{name:POST /api/notifications}: p(95)<500, p(99)<1000", "http_req_duration",
     (("name", "POST /api/notifications"),), [("p(95)", "<", 500.0), ("p(99)", "<", 1000.0)]),
    ("http_req_duration{name:GET /api/items/{id}}: p(99.9) <= 2s", "http_req_duration",
     (("name", "GET /api/items/{id}"),), [("p(99.9)", "<=", 2000.0)]),
    ("http_req_failed: rate<1%", "http_req_failed", (), [("rate", "<", 0.01)]),
    ("http_req_failed: rate<0.01", "http_req_failed", (), [("rate", "<", 0.01)]),
    ("ws_delivery_latency{path:cross, phase:steady}: p(99)<250", "ws_delivery_latency",
     (("path", "cross"), ("phase", "steady")), [("p(99)", "<", 250.0)]),
    ("delivery_lost: count==0", "delivery_lost", (), [("count", "==", 0.0)]),
    ("  publish_duration_corrected :  p( 99 ) < 1000 ms ", "publish_duration_corrected", (),
     [("p(99)", "<", 1000.0)]),
    ("http_req_duration: avg<200, min>=0, max<5s, med!=0, count>10", "http_req_duration", (),
     [("avg", "<", 200.0), ("min", ">=", 0.0), ("max", "<", 5000.0), ("med", "!=", 0.0), ("count", ">", 10.0)]),
    ("delivery_duplicated: rate<0.5", "delivery_duplicated", (), [("rate", "<", 0.5)]),
    ("ws_connect_failed: rate<=2.5%, count<100", "ws_connect_failed", (),
     [("rate", "<=", 0.025), ("count", "<", 100.0)]),
])
def test_valid_forms(expr, metric, tags, conditions):
    th = parse(expr)
    assert th.metric == metric
    assert th.tags == tags
    assert [(c.label, c.op, c.target) for c in th.conditions] == conditions


BAD = [
    # (expression, words the message must hold, the text at the caret)
    ("http_req_duration: p(95<500", "expected ')' to close p(", "<"),
    ("http_req_durationn: p(95)<5", "did you mean 'http_req_duration'", "h"),
    ("http_req_failed: p(95)<1", "http_req_failed is a rate metric", "p"),
    ("http_req_duration{nam:x}: p(95)<1", "has no tag 'nam'; its tags: name,", "n"),
    ("http_req_duration: p95<500", "write percentiles as p(95)", "p"),
    ("http_req_duration p(95)<500", "expected ':' after http_req_duration", "p"),
    ("http_req_duration: p(95)=500", "use '==' to compare", "="),
    ("http_req_duration: p(95)<", "expected a number after '<', the expression ends", ""),
    ("http_req_duration: p(95)<500,", "expected a condition after ','", ""),
    ("http_req_duration{name:GET /a: p(95)<1", "unclosed '{'", "{"),
    ("ws_delivery_latency{path:crosss}: p(99)<1", "tag 'path' is one of same, cross", "c"),
    ("http_req_duration: p(95)<500 p(99)<1", "separate conditions with ','", "p"),
    ("http_req_duration: p(95)<5x", "unknown unit 'x'", "x"),
    ("http_req_failed: rate<1s", "takes a plain number, not 's'", "s"),
    ("", "empty threshold", ""),
    ("delivery_lost: avg<1", "delivery_lost is a counter metric", "a"),
    ("http_req_duration: p(0)<1", "percentile must be in (0, 100]", "0"),
    ("http_req_duration: p(150)<1", "percentile must be in (0, 100]", "1"),
    ("http_req_duration: mean<1", "unknown aggregation 'mean'", "m"),
    ("http_req_duration: p(95) 500", "expected a comparison", "5"),
    ("http_req_duration: p(95)<abc", "expected a number after '<'", "a"),
    ("http_req_duration{name:}: p(95)<1", "empty value for tag 'name'", "}"),
    ("http_req_duration:", "expected an aggregation", ""),
    ("9lives: p(95)<1", "expected a metric name", "9"),
]


@pytest.mark.parametrize("expr, words, at_caret", BAD)
def test_bad_forms_point_at_the_mistake(expr, words, at_caret):
    with pytest.raises(ThresholdError) as err:
        parse(expr, "--slo")
    e = err.value
    assert words in e.reason
    assert e.expr[e.pos:e.pos + len(at_caret)] == at_caret
    lines = str(e).splitlines()
    assert lines[0].startswith("bad threshold (--slo): ")
    assert lines[1] == "  " + expr
    assert lines[2] == " " * (2 + e.pos) + "^"


def test_resolve_overrides_per_metric_tags_and_aggregation():
    targets = resolve([], ["http_req_duration: p(95)<300"])
    got = {(t.metric, c.label): (c.target, t.source) for t in targets for c in t.conditions}
    assert got[("http_req_duration", "p(95)")] == (300.0, "--slo")
    assert got[("http_req_duration", "p(99)")] == (1000.0, "default")   # the other default stays
    assert got[("http_req_failed", "rate")] == (0.01, "default")
    # Same metric with a tag is a different target, not an override.
    tagged = resolve(["http_req_duration{name:GET /x}: p(95)<100"])
    assert sum(len(t.conditions) for t in tagged) == sum(len(parse(x).conditions) for x in DEFAULT_SLO) + 1
    assert resolve([], [], use_defaults=False) == []
    assert sum(len(t.conditions) for t in resolve()) == sum(len(parse(x).conditions) for x in DEFAULT_SLO)


def test_resolve_reports_the_source_of_a_bad_expression():
    with pytest.raises(ThresholdError, match=r"\(run.json\)"):
        resolve(["http_req_duration p(95)<1"], [])


def _column(path, column, where=None):
    values = []
    for worker_dir in sorted((path / "records").iterdir()):
        with open(worker_dir / "http.csv", newline="") as fh:
            for row in csv.DictReader(fh):
                if where is None or where(row):
                    values.append(row[column])
    return values


def test_percentiles_come_from_every_raw_sample(full_run):
    run = load_run(full_run.run_dir)
    durations = np.array([float(v) for v in _column(full_run.run_dir, "dur_ms")])
    items = np.array([float(v) for v in _column(full_run.run_dir, "dur_ms",
                                                lambda r: r["name"] == "GET /api/items/{id}")])
    failed = [v for v in _column(full_run.run_dir, "ok")]
    targets = [parse("http_req_duration: p(95)<500, p(99.9)<100000, max<1, avg>0, count>0"),
               parse("http_req_duration{name:GET /api/items/{id}}: p(50)<1000, min>=0"),
               parse("http_req_failed: rate<0.5, count>=0")]
    results = evaluate(run, targets)
    observed = [r.observed for r in results]
    assert observed[0] == pytest.approx(np.percentile(durations, 95))
    assert observed[1] == pytest.approx(np.percentile(durations, 99.9))
    assert observed[2] == pytest.approx(durations.max())
    assert observed[3] == pytest.approx(durations.mean())
    assert observed[4] == len(durations)
    assert observed[5] == pytest.approx(np.percentile(items, 50))
    assert observed[6] == pytest.approx(items.min())
    assert observed[7] == pytest.approx(failed.count("0") / len(failed))
    assert observed[8] == failed.count("0")
    verdicts = [r.verdict for r in results]
    assert verdicts[2] is Verdict.FAIL and verdicts[0] is Verdict.PASS  # max<1 ms cannot hold


def test_delivery_metrics_agree_with_the_checker(full_run):
    run = load_run(full_run.run_dir)
    counts = delivery.analyze(run).counts
    results = evaluate(run, [parse(f"{m}: count>=0") for m in (
        "delivery_lost", "delivery_lost_eventual", "delivery_duplicated", "delivery_unexpected",
        "delivery_misrouted", "delivery_recovered", "delivery_late", "delivery_out_of_order",
        "delivery_out_of_sequence", "delivery_out_of_id_order")])
    assert [int(r.observed) for r in results] == [
        counts.lost_live, counts.lost_eventual, counts.duplicated, counts.unexpected, counts.misrouted,
        counts.recovered, counts.late, counts.out_of_order, counts.out_of_sequence, counts.out_of_id_order]
    (missed,) = evaluate(run, [parse("delivery_missed: rate<1")])
    assert missed.observed == pytest.approx(counts.lost_live / counts.expected_live)


def test_tag_filters_split_the_samples(full_run):
    run = load_run(full_run.run_dir)
    lat = delivery.analyze(run).latency
    same, cross, steady = evaluate(run, [parse("ws_delivery_latency{path:same}: p(99)<1e9"),
                                         parse("ws_delivery_latency{path:cross}: p(99)<1e9"),
                                         parse("ws_delivery_latency{phase:steady,path:cross}: count>0")])
    assert same.samples == int((lat["path"] == "same").sum())
    assert cross.observed == pytest.approx(np.percentile(lat.loc[lat["path"] == "cross", "latency_ms"], 99))
    assert steady.observed == int(((lat["phase"] == "steady") & (lat["path"] == "cross")).sum())
    assert same.observed < cross.observed  # cross-instance adds a broker hop


def test_no_samples_is_unknown(full_run):
    (r,) = evaluate(load_run(full_run.run_dir), [parse("ws_delivery_latency{origin:r9}: p(99)<250")])
    assert r.observed is None and r.verdict is Verdict.UNKNOWN
    (c,) = evaluate(load_run(full_run.run_dir), [parse("delivery_lost{origin:r9}: count==0")])
    assert c.observed == 0 and c.verdict is Verdict.PASS  # no events is a count of zero


def test_corrected_publish_latency_is_never_below_raw(full_run):
    run = load_run(full_run.run_dir)
    raw, corrected = evaluate(run, [parse("publish_duration: p(99)<1e9"),
                                    parse("publish_duration_corrected: p(99)<1e9")])
    assert corrected.observed > raw.observed


def test_a_counter_rate_per_phase_is_per_second_of_that_phase(full_run):
    run = load_run(full_run.run_dir)
    (r,) = evaluate(run, [parse("http_reqs: rate>20")])
    seconds = phase_seconds(run)
    # The synthetic faults neither overlap nor come within a heal window of each other.
    assert seconds["fault"] == pytest.approx(sum(f.end - f.start for f in run.faults))
    assert seconds["after_heal"] == pytest.approx(30.0 * len(run.faults))
    assert sum(seconds.values()) == pytest.approx(run.duration)
    counts = metrics.samples(run, "http_reqs")["phase"].astype(str).value_counts()
    by_phase = observed_by_phase(run, r)
    assert set(by_phase) == set(PHASES)
    for phase, rate in by_phase.items():
        assert rate == pytest.approx(counts[phase] / seconds[phase])
        # The load does not stop for a fault: each phase runs at about the run's rate,
        # not at its share of the run's length.
        assert rate == pytest.approx(r.observed, rel=0.2) and holds(r, rate)


def test_a_phase_the_run_never_had_has_no_counter_rate(clean_run):
    run = load_run(clean_run.run_dir)
    (r,) = evaluate(run, [parse("http_reqs: rate>0")])
    by_phase = observed_by_phase(run, r)
    assert by_phase["fault"] is None and by_phase["after_heal"] is None
    assert by_phase["steady"] == pytest.approx(r.observed)
