"""Verdicts: order, composition, crashes as unknown, summary.json and junit.xml."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET

import pytest

from reports import delivery, faults
from reports.records import load_run
from reports.check import CheckResult, Verdict, compose, run_check
from reports.verdict import evaluate_run


def test_order_is_pass_unknown_fail():
    assert Verdict.PASS < Verdict.UNKNOWN < Verdict.FAIL
    assert max([Verdict.UNKNOWN, Verdict.FAIL, Verdict.PASS]) is Verdict.FAIL
    assert sorted([Verdict.FAIL, Verdict.PASS, Verdict.UNKNOWN]) == [Verdict.PASS, Verdict.UNKNOWN, Verdict.FAIL]


@pytest.mark.parametrize("verdicts, worst", [
    ([Verdict.PASS, Verdict.PASS], Verdict.PASS),
    ([Verdict.PASS, Verdict.UNKNOWN], Verdict.UNKNOWN),
    ([Verdict.UNKNOWN, Verdict.FAIL, Verdict.PASS], Verdict.FAIL),
    ([], Verdict.UNKNOWN),
])
def test_compose_is_the_worst(verdicts, worst):
    assert compose(verdicts) is worst
    assert compose(CheckResult(f"c{i}", v, "") for i, v in enumerate(verdicts)) is worst


def test_a_check_that_raises_is_unknown_with_the_reason(clean_run):
    def broken(run):
        raise KeyError("latency_ms")

    (result,) = run_check("broken", broken, load_run(clean_run.run_dir))
    assert result.verdict is Verdict.UNKNOWN
    assert result.name == "broken"
    assert "KeyError" in result.summary and "latency_ms" in result.summary
    assert result.details["traceback"]


def test_check_returning_several_results(clean_run):
    results = run_check("multi", lambda run: [CheckResult("a", Verdict.PASS, ""),
                                              CheckResult("b", Verdict.FAIL, "")], load_run(clean_run.run_dir))
    assert [r.name for r in results] == ["a", "b"]


def test_evaluate_clean_run_passes_and_writes_outputs(clean_run, tmp_path):
    run_dir = shutil.copytree(clean_run.run_dir, tmp_path / "run")
    outcome = evaluate_run(run_dir, slo=["ws_delivery_latency: p(99)<1000"])
    assert outcome.verdict is Verdict.PASS, [(c.name, c.summary) for c in outcome.checks if c.verdict != Verdict.PASS]
    assert outcome.exit_code == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["verdict"] == "pass" and summary["exit_code"] == 0
    counts = delivery.analyze(load_run(run_dir)).counts
    assert summary["delivery"]["counts"]["expected_eventual"] == counts.expected_eventual
    assert summary["delivery"]["latency_ms"]["cross"]["p99"] > summary["delivery"]["latency_ms"]["same"]["p50"]
    assert {r["condition"] for r in summary["slo"]} == {"p(95)<500", "p(99)<1000", "rate<0.01", "count==0"}
    assert all(r["observed"] is not None for r in summary["slo"])
    assert summary["run"]["seed"] == clean_run.spec.seed
    suite = ET.parse(run_dir / "junit.xml").getroot().find("testsuite")
    assert int(suite.get("tests")) == len(outcome.checks) == len(suite.findall("testcase"))
    assert int(suite.get("failures")) == 0


def test_failures_and_unknowns_in_junit_and_exit_code(full_run, tmp_path):
    run_dir = shutil.copytree(full_run.run_dir, tmp_path / "run")
    outcome = evaluate_run(run_dir, slo=["delivery_lost_eventual: count==0", "ws_delivery_latency{origin:r9}: p(99)<1"])
    by_name = {c.name: c for c in outcome.checks}
    assert by_name["delivery"].verdict is Verdict.FAIL
    assert by_name["slo delivery_lost_eventual: count==0"].verdict is Verdict.FAIL
    assert by_name["slo ws_delivery_latency{origin:r9}: p(99)<1"].verdict is Verdict.UNKNOWN
    assert outcome.exit_code == 1 and outcome.verdict is Verdict.FAIL
    suite = ET.parse(run_dir / "junit.xml").getroot().find("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["delivery"].find("failure") is not None
    assert cases["slo ws_delivery_latency{origin:r9}: p(99)<1"].find("skipped") is not None
    assert int(suite.get("failures")) == sum(c.verdict is Verdict.FAIL for c in outcome.checks)
    assert int(suite.get("skipped")) == sum(c.verdict is Verdict.UNKNOWN for c in outcome.checks)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["delivery"]["counts"]["lost_eventual"] == full_run.truth.lost_eventual
    assert [f["fault_id"] for f in summary["faults"]] == ["f1", "f2"]
    assert all(f["status"] == "recovered" for f in summary["faults"])


def test_a_crashing_checker_does_not_stop_evaluation(clean_run, tmp_path, monkeypatch):
    run_dir = shutil.copytree(clean_run.run_dir, tmp_path / "run")

    def boom(run, options=None):
        raise RuntimeError("checker bug")

    monkeypatch.setattr(delivery, "check", boom)
    outcome = evaluate_run(run_dir)
    by_name = {c.name: c for c in outcome.checks}
    assert by_name["delivery"].verdict is Verdict.UNKNOWN
    assert "checker bug" in by_name["delivery"].summary
    assert by_name["records"].verdict is Verdict.PASS
    assert outcome.verdict is Verdict.UNKNOWN and outcome.exit_code == 3, "unknown never passes a CI gate"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["verdict"], summary["exit_code"]) == ("unknown", 3)


def test_run_json_targets_apply_and_cli_targets_override(clean_run, tmp_path):
    run_dir = shutil.copytree(clean_run.run_dir, tmp_path / "run")
    meta = json.loads((run_dir / "run.json").read_text())
    meta["slo"] = ["http_req_duration: p(95)<0.001"]
    (run_dir / "run.json").write_text(json.dumps(meta))
    outcome = evaluate_run(run_dir)
    row = next(r for r in outcome.slo if r.aggregation == "p(95)")
    assert (row.target, row.source, row.verdict) == (0.001, "run.json", Verdict.FAIL)
    outcome = evaluate_run(run_dir, slo=["http_req_duration: p(95)<5000"])
    row = next(r for r in outcome.slo if r.aggregation == "p(95)")
    assert (row.target, row.source, row.verdict) == (5000.0, "--slo", Verdict.PASS)


@pytest.mark.parametrize("outcome, verdict", [
    ("ok", Verdict.PASS), ("heal_failed", Verdict.FAIL), ("active", Verdict.UNKNOWN),
    ("inject_failed", Verdict.UNKNOWN),
])
def test_fault_journal_check(mini, outcome, verdict):
    mini.connect("a", "u1", 0)
    mini.fault("f1", "kill", "r2", 10, None if outcome == "active" else 20, outcome=outcome)
    result = faults.check(load_run(mini.write()))
    assert result.verdict is verdict
    if verdict is not Verdict.PASS:
        assert "f1" in result.summary


def test_no_records_is_unknown(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"name": "empty"}))
    outcome = evaluate_run(run_dir)
    by_name = {c.name: c for c in outcome.checks}
    assert by_name["records"].verdict is Verdict.UNKNOWN
    assert by_name["delivery"].verdict is Verdict.UNKNOWN
    assert outcome.exit_code == 3, "a run that checked nothing must not exit 0"
