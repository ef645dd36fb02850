"""The app's own health in the verdict, on real runs of an app that exits by itself
(tests/apps/plain_ws_app.py `--exit-after`: `os._exit(3)` after a fatal message, as a
Node replica with an unhandled error does):

- of two replicas, one exits by itself while the other is killed by the timeline: the replicas
  check fails naming the one, its exit code, its time and its log; the killed one is
  the fault's (asked for), and `gauntlet report` judges the same from the run directory;
- every replica exits: delivery owes the subscribers that cannot reconnect nothing and
  passes, but `ws_subscribers_unconnected{phase:steady}` and the replicas check fail the
  verdict; where the dropped subscribers reconnect elsewhere (the first run) that count
  stays 0.

The healthy baselines of the chaos suite (tests/chaos/test_chaos_baseline.py, the
replica-kill runs) are the passing controls: they assert the replicas check passes.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from reports.check import Verdict
from reports.cli import report_main
from reports.verdict import evaluate_run

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration]
DEADLINE_S = 150
# Ending at 0 users: the load is the user's explicit length, not lengthened for recovery.
STAGES = "2s:12,9s:12,1s:0"

TIMELINE = """
name = "kill-r1"
[[fault]]
kind = "kill"
target = "r1"
at = "2s"
for = "3s"
"""


def _config(tmp_path: Path, exit_args: str) -> Path:
    path = tmp_path / "gauntlet.toml"
    path.write_text(textwrap.dedent(f"""
        [app]
        command = "{{python}} tests/apps/plain_ws_app.py --listen {{port}} --instance {{instance}} {exit_args}"
        env = {{ PLAIN_REDIS = "{{redis_url}}" }}
        health_path = "/healthz"
        cwd = "{ROOT}"

        [load]
        adapter = "jsonws"
        publish_rate = 8
        user_pool = 8
        broadcast_ratio = 0.2
        [load.jsonws]
        ws_url = "{{ws_base}}/ws?user={{user}}"
        key_path = "data.key"
        sent_ts_path = "data.sent_ts"
        publish_url = "/publish"
        publish_body = {{ user = "{{user}}", data = "{{data}}" }}
        broadcast_url = "/broadcast"
        broadcast_body = {{ data = "{{data}}" }}
        headers = {{}}
    """))
    return path


def run_gauntlet(tmp_path: Path, *args: str) -> tuple[int, str, Path]:
    """`gauntlet run` in its own session, interrupted like Ctrl-C if it overruns."""
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "ramp",
                                 "--quiet", "--seed", "5", "--no-fault-proxies", "--runs-dir",
                                 str(tmp_path / "runs"), *args], cwd=tmp_path, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(DEADLINE_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            raise AssertionError(f"gauntlet run still going after {DEADLINE_S}s:\n{log.read_text()[-3000:]}")
    (run_dir,) = (tmp_path / "runs").iterdir()
    return code, log.read_text(errors="replace"), run_dir


def _check(summary: dict, name: str) -> dict:
    return next(c for c in summary["checks"] if c["name"] == name)


@pytest.mark.timeout(DEADLINE_S + 90)
def test_a_replica_that_exits_by_itself_fails_and_one_killed_by_a_fault_does_not(tmp_path):
    timeline = tmp_path / "kill-r1.toml"
    timeline.write_text(TIMELINE)
    config = _config(tmp_path, "--exit-after 7 --exit-instance r2")
    code, output, run_dir = run_gauntlet(tmp_path, "--stages", STAGES, "--replicas", "2", "--config", str(config),
                                         "--chaos", str(timeline))
    assert code == 1, output[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    check = _check(summary, "replicas")
    assert check["verdict"] == "fail", check
    first = {}
    for e in summary["replicas"]["exits"]:
        first.setdefault(e["replica"], e)
    r2, r1 = first["r2"], first["r1"]
    assert r2["asked"] is False and r2["code"] == 3 and r2["signal"] is None
    assert 3 < r2["at_s"] < 12, r2
    assert any("fatal: giving up after 7.0s" in line for line in r2["log_tail"]), r2
    assert r1["asked"] is True and r1["asked_by"] == "fault f1 (kill r1)" and r1["signal"] == signal.SIGKILL
    assert summary["replicas"]["unasked"] == 1, summary["replicas"]
    assert "r2 exited at" in check["summary"] and "(exit code 3)" in check["summary"]
    assert "r1" not in check["summary"].split("nobody asked for:")[1]
    # The other checks hold: the faults healed, and the subscribers r1's kill and r2's exit
    # dropped reconnected to the replica still up, so none is counted as unconnected.
    assert _check(summary, "faults")["verdict"] == "pass"
    assert _check(summary, "slo ws_subscribers_unconnected{phase:steady}: count==0")["verdict"] == "pass"
    dropped = [e for e in _conn_events(run_dir) if e["event"] == "disconnect" and e["instance"] in ("r1", "r2")
               and e["detail"] != "stopped by load generator"]
    assert dropped, "the kill and the exit dropped sockets"
    # The CLI table, junit.xml and the report name it too.
    assert "FAIL  replicas" in output and "| fatal: giving up after 7.0s" in output, output[-3000:]
    case = ET.parse(run_dir / "junit.xml").find(".//testcase[@name='replicas']")
    assert "r2 exited at" in case.find("failure").get("message")
    html = (run_dir / "report.html").read_text()
    assert "Replica health" in html and "fatal: giving up after 7.0s" in html

    # `gauntlet report` judges the raw records again: the same exit, the same failure.
    out = io.StringIO()
    assert report_main([str(run_dir), "-q"], out=out) == 1
    again = json.loads((run_dir / "summary.json").read_text())
    assert _check(again, "replicas")["summary"] == check["summary"]
    # Negative control on the same records: without r2's exit line, nothing is left to fail.
    lines = (run_dir / "replicas.jsonl").read_text().splitlines()
    kept = [x for x in lines if not (json.loads(x)["replica"] == "r2" and json.loads(x)["event"] == "exited")]
    assert len(kept) == len(lines) - 1
    (run_dir / "replicas.jsonl").write_text("\n".join(kept) + "\n")
    assert next(c for c in evaluate_run(run_dir).checks if c.name == "replicas").verdict is Verdict.PASS


@pytest.mark.timeout(DEADLINE_S + 90)
def test_when_every_replica_dies_the_verdict_fails_not_a_full_delivery_pass(tmp_path):
    """Two replicas, both exit by themselves a few seconds into the load: the subscribers
    cannot reconnect (every connect gets nginx's 502), so delivery owes them nothing; the
    subscriber count (past its 10 s allowance) and the replicas check fail the run."""
    config = _config(tmp_path, "--exit-after 5")
    code, output, run_dir = run_gauntlet(tmp_path, "--stages", "2s:12,14s:12,1s:0", "--replicas", "2",
                                         "--config", str(config))
    assert code == 1, output[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["verdict"] == "fail"
    assert {e["replica"] for e in summary["replicas"]["exits"] if not e["asked"]} == {"r1", "r2"}
    (row,) = [r for r in summary["slo"] if r["metric"] == "ws_subscribers_unconnected"]
    assert row["tags"] == {"phase": "steady"} and row["verdict"] == "fail", row
    events = _conn_events(run_dir)
    subscribers = {e["sub"] for e in events}
    assert row["observed"] == len(subscribers) >= 3, (row, subscribers)  # every one of them, once
    # Stopped at the end while backing off: the recorder says so, and their time ends there.
    assert {e["sub"] for e in events if e["event"] == "stop"} == subscribers
    check = _check(summary, "slo ws_subscribers_unconnected{phase:steady}: count==0")
    assert check["verdict"] == "fail" and "subscribers without a connection" in check["summary"]
    assert "FAIL  slo ws_subscribers_unconnected" in output


def _conn_events(run_dir: Path) -> list[dict]:
    import csv

    rows = []
    for path in (run_dir / "records").glob("*/conn.csv"):
        with path.open(newline="") as fh:
            rows.extend(csv.DictReader(fh))
    return rows
