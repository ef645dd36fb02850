"""Real headless Locust runs (child processes) against a real two-replica stack:
outcomes, records against the SUT's own counters, distributed runs, and the errors a
person gets for a bad command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from load_support import ROOT, run_locust, start_locust

from harness.ports import free_port
from common.state import StackState, write_state
from reports.records import load_run
from tests.support import stop_process, wait_for

pytestmark = pytest.mark.integration


def sut_counters(stack) -> dict[str, int]:
    totals = {"delivered": 0, "replayed": 0, "published": 0}
    for replica in stack.state().replicas:
        with urllib.request.urlopen(replica.url + "/api/metrics", timeout=5) as resp:
            metrics = json.load(resp)
        for key in totals:
            totals[key] += int(metrics[key])
    return totals


def assert_clean(result):
    assert "Traceback" not in result.log, result.log[-4000:]
    assert result.returncode == 0, result.log[-4000:]


def test_headless_run_gives_every_publish_an_outcome_and_matches_the_sut(load_stack, locust_env, tmp_path):
    stack, _ = load_stack
    before = sut_counters(stack)
    result = run_locust(["--headless", "-t", "10s", "--stages", "3s:30,30s:30", "--publish-rate", "10",
                         "--user-pool", "10", "--seed", "5"], tmp_path, locust_env)
    after = sut_counters(stack)
    assert_clean(result)
    run = load_run(result.run_dir)
    assert run.workers == ("w0",)
    pub, recv, conn = run.pub, run.recv, run.conn

    assert len(pub) >= 30 and pub["key"].is_unique
    assert set(pub["outcome"].astype(str)) <= {"ok", "fail", "unknown"} and pub["outcome"].notna().all()
    ok = pub[pub["outcome"] == "ok"]
    assert len(ok) >= 0.9 * len(pub), "a healthy stack acknowledges what it is sent"
    assert ok["id"].notna().all() and set(ok["instance"].astype(str)) == {"r1", "r2"}
    assert (ok["ts_ack"] >= ok["ts_sent"]).all() and (ok["ts_sent"] >= ok["ts_intended"] - 0.001).all()
    assert after["published"] - before["published"] == len(ok)

    # What the subscribers recorded is what the replicas say they sent, up to the frames
    # in flight when the sockets closed at the end.
    live = recv[~recv["replay"]]
    sent = after["delivered"] - before["delivered"]
    assert len(live) <= sent
    assert sent - len(live) <= max(30, 0.03 * sent), (sent, len(live))
    assert (recv["replay"]).sum() == after["replayed"] - before["replayed"]
    assert set(recv["key"].dropna()) <= set(pub["key"])
    assert set(recv["instance"].astype(str)) == {"r1", "r2"} and set(recv["origin"].astype(str)) == {"r1", "r2"}

    # No loss: every user publish sent once all subscribers were connected, and
    # acknowledged a second before the end, reached a subscriber of its user.
    end = conn[conn["event"] == "disconnect"]["ts"].min()
    ramped = conn[conn["event"] == "connect"]["ts"].max()
    settled = ok[(ok["kind"] == "user") & (ok["ts_sent"] > ramped + 0.5) & (ok["ts_ack"] < end - 1.0)]
    assert len(settled) >= 20
    missing = set(settled["key"]) - set(recv["key"].dropna())
    assert not missing, f"{len(missing)} acknowledged publishes never delivered"

    connects = conn[conn["event"] == "connect"]
    disconnects = conn[conn["event"] == "disconnect"]
    assert len(connects) == len(disconnects) >= 20, "every socket opened was closed and recorded"
    assert set(connects["user"].astype(str)) == {f"u{i}" for i in range(10)}
    assert run.users["sockets"].max() >= 20 and run.users["ts"].diff().dropna().median() == pytest.approx(1, abs=0.2)
    assert set(run.http["instance"].dropna().astype(str)) == {"r1", "r2"}
    assert "deliver same-instance" in result.log and "deliver cross-instance" in result.log


def test_processes_2_merge_without_loss_or_double_counting(load_stack, locust_env, tmp_path):
    port = str(free_port())  # not Locust's default 5557: another run on the machine may hold it
    result = run_locust(["--headless", "-t", "8s", "--processes", "2", "--master-bind-port", port, "--master-port", port,
                         "--stages", "2s:20,30s:20",
                         "--publish-rate", "10", "--user-pool", "8", "--only-summary"], tmp_path, locust_env)
    assert_clean(result)
    run = load_run(result.run_dir)
    assert run.workers == ("w0", "w1")
    per_worker = {w: pd.read_csv(result.records(w) / "pub.csv") for w in run.workers}
    assert len(run.pub) == sum(len(p) for p in per_worker.values()), "merged: nothing lost"
    assert run.pub["key"].is_unique, "merged: nothing counted twice"
    for w, frame in per_worker.items():
        assert frame["key"].str.startswith(f"{w}-").all()
    for w in run.workers:
        assert (run.recv["worker"] == w).sum() > 0, f"{w} received nothing"
    # Subscriber i = slot * workers + index: w0 takes even users, w1 odd ones.
    users = run.conn[run.conn["event"] == "connect"].groupby("worker", observed=True)["user"].agg(
        lambda s: {int(u[1:]) % 2 for u in s})
    assert users["w0"] == {0} and users["w1"] == {1}
    assert set(run.recv["key"].dropna()) <= set(run.pub["key"])
    assert not list(result.run_dir.glob("records/*/*.part"))


def test_a_worker_that_cannot_see_the_run_dir_ships_its_records(load_stack, locust_env, tmp_path):
    port = free_port()
    master_dir, worker_dir = tmp_path / "master", tmp_path / "worker"
    master_dir.mkdir()
    worker_dir.mkdir()
    worker_log = open(worker_dir / "worker.log", "wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "scenarios" / "ramp.py"), "--worker",
         "--master-port", str(port), "--ship-records", "always", "--run-dir", str(worker_dir / "local")],
        cwd=worker_dir, env={**os.environ, **locust_env}, stdout=worker_log, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        result = run_locust(["--headless", "-t", "6s", "--master", "--expect-workers", "1",
                             "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                             "--stages", "2s:12,30s:12", "--only-summary"], master_dir, locust_env)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        worker_log.close()
    assert_clean(result)
    shipped = result.records("w0")
    local = worker_dir / "local" / "records" / "w0"
    assert "records from w0 received" in result.log
    for name in ("http.csv", "pub.csv", "recv.csv", "conn.csv", "users.csv", "meta.json"):
        assert (shipped / name).read_bytes() == (local / name).read_bytes(), name
    assert len(pd.read_csv(shipped / "recv.csv")) > 0
    assert not list(shipped.glob("*.part"))


def test_a_reconnect_storm_reconnects_every_socket_and_resumes(load_stack, locust_env, tmp_path):
    result = run_locust(["--headless", "-t", "9s", "--stages", "2s:16,30s:16", "--storm-at", "4s",
                         "--publish-rate", "10", "--user-pool", "4"], tmp_path, locust_env,
                        scenario="reconnect_storm.py")
    assert_clean(result)
    run = load_run(result.run_dir)
    conn = run.conn
    storms = conn[(conn["event"] == "disconnect") & (conn["detail"] == "reconnect storm")]
    subscribers = conn[conn["event"] == "connect"]["sub"].nunique()
    assert len(storms) == subscribers >= 10, "every socket dropped once"
    assert storms["ts"].max() - storms["ts"].min() < 1.0, "at once"
    resumes = conn[conn["event"] == "resume"]
    assert set(resumes["sub"]) == set(storms["sub"]), "each came back and asked for what it missed"
    assert (conn[conn["event"] == "connect"].groupby("sub")["conn"].max() == 2).all()
    # Eventual delivery across the storm: each subscriber saw (live, from the welcome
    # backlog or by resume) every acknowledged publish addressed to it while it existed.
    recv, ok = run.recv, run.pub[run.pub["outcome"] == "ok"]
    end = conn[(conn["event"] == "disconnect") & (conn["detail"] != "reconnect storm")]["ts"].min()
    for sub, events in conn.groupby("sub"):
        user = str(events["user"].iloc[0])
        start = events[events["event"] == "connect"]["ts"].min()
        due = ok[((ok["user"] == user) | (ok["kind"] == "broadcast")) & (ok["ts_ack"] > start + 1.0)
                 & (ok["ts_ack"] < end - 1.0)]
        seen = set(recv[recv["sub"] == sub]["key"].dropna())
        missing = set(due["key"]) - seen
        assert not missing, f"{sub} ({user}) never got {sorted(missing)[:5]}"
    live = recv[~recv["replay"]]
    assert not live.duplicated(["sub", "conn", "key"]).any(), "no duplicate on one connection"
    assert recv["replay"].sum() > 0, "the storm made the subscribers catch up"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_still_closes_its_records(load_stack, locust_env, tmp_path, sig):
    result = run_locust(["--headless", "--stages", "2s:16,60s:16", "--publish-rate", "20", "--only-summary"],
                        tmp_path, locust_env, timeout=60, signal_after=(6.0, sig))
    assert "Traceback" not in result.log
    assert result.returncode in (0, 1), result.log[-3000:]
    run = load_run(result.run_dir)
    conn = run.conn
    assert (conn["event"] == "connect").sum() == (conn["event"] == "disconnect").sum() >= 10
    assert set(conn[conn["event"] == "disconnect"]["detail"]) == {"stopped by load generator"}
    assert len(run.pub) >= 20 and run.pub["outcome"].notna().all() and run.pub["key"].is_unique
    last_users = run.users["ts"].max()
    assert run.pub["ts_intended"].max() <= last_users + 2, "records written up to the end"


def fake_state(tmp_path: Path) -> Path:
    path = tmp_path / "stack.json"
    write_state(StackState(run_dir=str(tmp_path), harness_pid=os.getpid(), started=time.time(), broker="redis",
                           lb_strategy="round_robin", lb_url="http://127.0.0.1:9", ws_url="ws://127.0.0.1:9/ws",
                           secret="s", publisher_key="p"), path)
    return path


@pytest.mark.parametrize("args, message", [
    (["--stages", "30s"], "invalid --stages '30s': stage 1 '30s': expected <duration>:<users>, e.g. 30s:100"),
    (["--stages", "30s:10,,5s:0"], "stage 2 '' is empty (stray comma?)"),
    (["--host", "http://10.1.2.3:8000"], "refusing to send load to 10.1.2.3"),
    (["--publish-rate", "-5"], "--publish-rate must be between 0 and 100000"),
    (["--adapter", "mqtt"], "unknown adapter 'mqtt'; known: reference, jsonws, socketio"),
    (["--processes", "2", "--broadcast-ratio", "3"], "--broadcast-ratio must be between 0 and 1"),
    (["--state", "/nonexistent/stack.json"], "no running stack: /nonexistent/stack.json does not exist"),
])
def test_bad_options_fail_with_one_clear_line(tmp_path, args, message):
    env = {"GAUNTLET_STATE": str(fake_state(tmp_path))}
    result = run_locust(["--headless", "-t", "5s", *args], tmp_path, env, timeout=60)
    assert result.returncode == 2, result.log[-3000:]
    assert message in result.log, result.log[-3000:]
    assert "Traceback" not in result.log
    error_lines = [line for line in result.log.splitlines() if "error" in line.lower()]
    assert len(error_lines) == 1, error_lines
    assert not (tmp_path / "run").exists(), "nothing recorded for a run that never started"


def test_help_lists_the_gauntlet_arguments(tmp_path):
    out = subprocess.run([sys.executable, "-m", "scenarios", "ramp", "--help"], cwd=ROOT, capture_output=True,
                         timeout=60, text=True)
    assert out.returncode == 0
    for flag in ("--stages", "--publish-rate", "--subscriber-weight", "--allow-remote", "--run-dir",
                 "--storm-at"):
        assert flag in out.stdout
    assert "30s:100,60s:100,30s:500,30s:0" in out.stdout, "the scenario's own default stages"


def test_web_ui_runs_take_custom_arguments_and_keep_keys_unique(load_stack, locust_env, tmp_path):
    """Two tests from the web UI in one Locust process: the form's custom arguments
    apply, and the second test's records continue the first's (no key reused)."""
    import urllib.parse

    from harness.ports import port_open

    stack, _ = load_stack
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def swarm(rate: str) -> None:
        form = urllib.parse.urlencode({"user_count": "10", "spawn_rate": "10", "host": stack.state().lb_url,
                                       "stages": "1s:10,60s:10", "publish_rate": rate}).encode()
        with urllib.request.urlopen(urllib.request.Request(base + "/swarm", data=form), timeout=10) as resp:
            assert json.load(resp)["success"] is True

    def stop() -> None:
        urllib.request.urlopen(urllib.request.Request(base + "/stop", data=b"", method="POST"), timeout=30).read()

    with open(tmp_path / "locust.log", "wb") as log:
        proc = start_locust(["--web-host", "127.0.0.1", "--web-port", str(port)], tmp_path, locust_env, log)
        try:
            wait_for(lambda: port_open(port), 30, "the Locust web UI to listen")
            swarm("20")
            time.sleep(5)
            stop()
            time.sleep(1)
            swarm("2")
            time.sleep(5)
            stop()
            time.sleep(1)
        finally:
            stop_process(proc, grace=30)  # Locust writes its records on a graceful stop
    log_text = (tmp_path / "locust.log").read_text(errors="replace")
    assert "Traceback" not in log_text, log_text[-3000:]
    pub = load_run(tmp_path / "run").pub
    assert pub["key"].is_unique, "the second test continued the key sequence"
    ts = pub["ts_intended"].sort_values()
    split = ts.iloc[int(ts.diff().fillna(0).to_numpy().argmax())]  # the first send of the second test
    first, second = pub[pub["ts_intended"] < split], pub[pub["ts_intended"] >= split]
    assert len(second) > 0 and len(first) > 3 * len(second), "--publish-rate from the form: 20/s, then 2/s"


@pytest.mark.parametrize("scenario", ["spike.py", "soak.py", "fanout.py"])
def test_every_scenario_runs_and_records(load_stack, locust_env, tmp_path, scenario):
    result = run_locust(["--headless", "-t", "5s", "--only-summary"], tmp_path, locust_env, scenario=scenario)
    assert_clean(result)
    run = load_run(result.run_dir)
    assert len(run.recv) > 0 and len(run.pub) > 0 and run.pub["outcome"].notna().all()
    meta = json.loads((result.records() / "meta.json").read_text())
    assert meta["scenario"] == scenario.removesuffix(".py")
    if scenario == "fanout.py":
        assert (run.pub["kind"] == "broadcast").mean() > 0.7, "a broadcast storm"
        publishers = run.http[run.http["method"] == "POST"]
        assert len(publishers) == len(run.pub[run.pub["ts_sent"].notna()])
        # each broadcast reaches every connected subscriber
        fanout = run.recv[run.recv["key"].isin(run.pub[run.pub["kind"] == "broadcast"]["key"])].groupby("key").size()
        assert fanout.max() >= 10
