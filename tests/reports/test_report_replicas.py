"""The replicas check judges each exit in replicas.jsonl against what asked for it:
the harness's own stop request for that incarnation, or a journalled fault that ends
replica processes aimed at it. Exits written by the real writer (harness/lifecycle.py)."""

from __future__ import annotations

import io
import json
import signal
import xml.etree.ElementTree as ET

import pytest
from report_support import T0, MiniRun

from harness.lifecycle import ReplicaLifecycle, incarnation_tail
from reports.cli import print_verdicts
from common.replica_events import REPLICAS_FILE, TEARDOWN
from reports.replicas import NOT_RECORDED
from reports.verdict import Verdict, evaluate_run


def _run(mini: MiniRun) -> MiniRun:
    mini.connect("s1", "u1", 1, until=50)
    key = "w0-1"
    mini.publish(key, 5, user="u1")
    mini.recv("s1", "u1", key, 5.05)
    return mini


def _lifecycle(root, exits, stops=()):
    """Write started/stopping/exited lines as the supervisor would, then fix their times."""
    life = ReplicaLifecycle(root)
    for name in ("r1", "r2", "r3"):
        life.started(name, f"{name}-1", 100)
    for name, reason, signum in stops:
        life.stopping(name, f"{name}-1", reason, signum)
    for name, at, code, signum, tail in exits:
        life.exited(name, f"{name}-1", code, signum, tail)
    lines = [json.loads(x) for x in (root / REPLICAS_FILE).read_text().splitlines()]
    at_of = {e[0]: e[1] for e in exits}
    for line in lines:
        line["ts"] = T0 + (at_of.get(line["replica"], 0.5) if line["event"] != "started" else 0.5)
    (root / REPLICAS_FILE).write_text("".join(json.dumps(x) + "\n" for x in lines))


def _replicas(verdict):
    return next(c for c in verdict.checks if c.name == "replicas")


def test_an_exit_nobody_asked_for_fails_naming_replica_code_time_and_log(mini):
    _run(mini).fault("f1", "partition", "r2", 10, 20)
    root = mini.write()
    _lifecycle(root, [("r2", 12.5, 1, None, ["connecting to redis", "Error: Redis connection lost, exiting"])])
    verdict = evaluate_run(root)
    check = _replicas(verdict)
    assert check.verdict is Verdict.FAIL and verdict.exit_code == 1
    assert "r2 exited at 12.5 s (exit code 1) during fault f1" in check.summary
    assert "Error: Redis connection lost, exiting" in check.summary
    summary = json.loads(verdict.summary_path.read_text())
    (exit_,) = summary["replicas"]["exits"]
    assert exit_["asked"] is False and exit_["code"] == 1 and exit_["log_tail"][-1].startswith("Error: Redis")
    case = ET.parse(verdict.junit_path).find(".//testcase[@name='replicas']")
    assert "r2 exited at 12.5 s" in case.find("failure").get("message")
    out = io.StringIO()
    print_verdicts(verdict, out)
    assert "| Error: Redis connection lost, exiting" in out.getvalue()


def test_a_signal_from_outside_the_harness_is_no_fault_of_the_timeline(mini):
    root = _run(mini).write()
    _lifecycle(root, [("r3", 30.0, None, signal.SIGKILL, [])])
    check = _replicas(evaluate_run(root))
    assert check.verdict is Verdict.FAIL and "(signal 9 (SIGKILL))" in check.summary
    assert "(its log is empty)" in check.summary


def test_exits_asked_for_by_faults_or_the_harness_pass(mini):
    # kill r2 from another terminal signals the pid itself: only the journal says so.
    _run(mini).fault("f1", "kill", "r2", 10, 18).fault("f2", "rolling-restart", "all", 25, 40)
    root = mini.write()
    _lifecycle(root, [("r2", 10.3, None, 9, []), ("r1", 28.0, 0, None, []), ("r3", 59.0, 0, None, [])],
               stops=[("r3", TEARDOWN, None)])
    check = _replicas(evaluate_run(root))
    assert check.verdict is Verdict.PASS, check.summary
    asked = {e["replica"]: e["asked_by"] for e in check.details["exits"]}
    assert asked == {"r2": "fault f1 (kill r2)", "r1": "fault f2 (rolling-restart all)",
                     "r3": "the harness (teardown)"}


@pytest.mark.parametrize("kind, target", [("kill", "r1"), ("latency", "redis"), ("pause", "r2")])
def test_dying_during_a_fault_that_did_not_end_it_fails(mini, kind, target):
    """A fault on another replica, or one that does not end processes, explains nothing."""
    _run(mini).fault("f1", kind, target, 10, 18)
    root = mini.write()
    _lifecycle(root, [("r2", 12.0, 1, None, ["boom"])])
    check = _replicas(evaluate_run(root))
    assert check.verdict is Verdict.FAIL and "during fault f1" in check.summary


def test_a_scale_in_names_the_replicas_it_removed(mini):
    _run(mini).fault("f1", "scale-in", "stack", 10, 12)
    mini.fault_lines[-1]["params"] = {"count": 1, "removed": ["r3"]}
    root = mini.write()
    _lifecycle(root, [("r3", 10.5, 0, None, [])])
    assert _replicas(evaluate_run(root)).verdict is Verdict.PASS
    _lifecycle(root, [("r2", 10.5, 0, None, [])])
    assert _replicas(evaluate_run(root)).verdict is Verdict.FAIL


def test_without_lifecycle_records_the_verdict_says_it_did_not_judge(mini):
    verdict = evaluate_run(_run(mini).write())
    assert "replicas" not in {c.name for c in verdict.checks}
    assert NOT_RECORDED in verdict.notes


def test_the_log_tail_is_the_exiting_incarnations_own(tmp_path):
    log = tmp_path / "r1.log"
    log.write_text("--- start 10:00:00 app\nold life\nold crash\n--- start 10:01:00 app\nnew life\nnew crash\n")
    assert incarnation_tail(log) == ["new life", "new crash"]
