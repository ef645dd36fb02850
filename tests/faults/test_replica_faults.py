"""Replica faults on a real stack (a user's own app, real processes, real signals):
kill, terminate, pause, restart, drain, rolling restart, scale; and the player."""

from __future__ import annotations

import signal
import time

import psutil
import pytest
from fault_support import TINY, Prober, build, get, served_by, wait_for

from chaos.heal import sweep
from chaos.journal import Journal, read_journal
from chaos.player import TimelinePlayer
from chaos.timeline import parse_timeline

pytestmark = pytest.mark.integration  # the fault catalogue itself; `-m chaos` is the SUT under load


@pytest.fixture(scope="module")
def stack(module_stacks):
    return module_stacks(replicas=3, app=TINY, fault_proxies=False)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_kill_removes_the_process_and_nginx_routes_around_it(stack, handle, injector):
    lb = stack.nginx.url
    assert "r2" in served_by(lb, 15), "r2 takes traffic before the fault (else the check below proves nothing)"
    pid = stack.replicas["r2"].pid
    injection = injector.inject(build("kill", "r2", handle))
    assert injection.inject_error is None
    assert gone(pid) and not stack.replicas["r2"].alive()
    seen = served_by(lb, 15)
    assert "r2" not in seen and "" not in seen, f"nginx must route around the dead replica: {seen}"
    record = injector.heal(injection)
    assert record.outcome == "ok" and record.end is not None
    assert stack.replicas["r2"].alive() and stack.replicas["r2"].pid != pid
    # nginx keeps a failed upstream out for fail_timeout (2s) before trying it again.
    wait_for(lambda: "r2" in served_by(lb, 10), 10, "nginx to route to r2 again")
    last = read_journal(stack.run_dir / "faults.jsonl")[-1]
    assert (last.kind, last.target, last.outcome) == ("kill", "r2", "ok")


def test_kill_with_a_restart_policy_comes_back_before_heal_and_the_policy_is_restored(stack, handle, injector):
    assert stack.spec.restart_delay is None
    pid = stack.replicas["r3"].pid
    injection = injector.inject(build("kill", "r3", handle, restart_after="0.5s"))
    assert stack.spec.restart_delay == 0.5
    wait_for(lambda: stack.replicas["r3"].pid not in (None, pid) and stack.replicas["r3"].ready(), 15,
             "the restart policy to bring r3 back")
    new_pid = stack.replicas["r3"].pid
    injector.heal(injection)
    assert stack.spec.restart_delay is None, "heal puts the stack's own policy back"
    assert stack.replicas["r3"].pid == new_pid, "heal must not restart a replica the policy already revived"


def test_revive_starts_only_a_dead_replica_and_the_sweep_reports_only_what_it_did(stack, handle):
    pid = stack.replicas["r2"].pid
    assert handle.revive_replica("r2") is False and stack.replicas["r2"].pid == pid, "a running replica is left alone"
    assert handle.revive_replica("r9") is False, "a replica that is not there (scaled in) is nothing to revive"
    assert sweep(handle) == [], "a clean stack needs nothing done"
    stack.signal_replica("r2", signal.SIGKILL)
    wait_for(lambda: not stack.replicas["r2"].alive(), 5, "r2 to die")
    assert sweep(handle) == ["restarted r2"]
    assert stack.replicas["r2"].alive() and stack.replicas["r2"].pid != pid
    assert handle.revive_replica("r2") is False


def test_terminate_stops_the_replica_gracefully_and_heal_starts_it(stack, handle, injector):
    pid = stack.replicas["r1"].pid
    injection = injector.inject(build("terminate", "r1", handle))
    wait_for(lambda: not stack.replicas["r1"].alive(), 10, "r1 to exit on SIGTERM")
    # uvicorn shuts down and re-raises SIGTERM: it ended by TERM, not by KILL.
    assert stack.replicas["r1"].proc.returncode() in (0, -15)
    injector.heal(injection)
    assert stack.replicas["r1"].alive() and stack.replicas["r1"].pid != pid


def test_pause_stalls_the_replica_and_heal_resumes_it(stack, handle, injector):
    r2 = stack.replicas["r2"].url + "/whoami"
    assert get(r2, 1.0)[0] == 200
    pid = stack.replicas["r2"].pid
    injection = injector.inject(build("pause", "r2", handle))
    # Signal delivery is asynchronous: the kernel marks the process stopped a moment later.
    wait_for(lambda: psutil.Process(pid).status() == psutil.STATUS_STOPPED, 2, "r2 to be stopped")
    t0 = time.monotonic()
    assert get(r2, 1.0)[0] == 0, "a paused replica accepts the connection but never answers"
    assert time.monotonic() - t0 >= 0.9
    assert get(stack.replicas["r1"].url + "/whoami", 1.0)[0] == 200, "the others are unaffected"
    injector.heal(injection)
    wait_for(lambda: psutil.Process(pid).status() != psutil.STATUS_STOPPED, 2, "r2 to run again")
    assert get(r2, 2.0)[0] == 200 and stack.replicas["r2"].pid == pid, "resumed, not restarted"


def test_restart_is_an_action_with_a_new_process(stack, handle, injector):
    pid = stack.replicas["r1"].pid
    injection = injector.inject(build("restart", "r1", handle, mode="hard"))
    assert injection.inject_error is None
    assert stack.replicas["r1"].pid != pid and stack.replicas["r1"].ready()
    assert injector.heal(injection).outcome == "ok"


def test_drain_takes_the_replica_out_of_nginx_but_keeps_it_running(stack, handle, injector):
    lb = stack.nginx.url
    assert "r3" in served_by(lb, 15)
    injection = injector.inject(build("drain", "r3", handle))
    seen = served_by(lb, 20)
    assert "r3" not in seen and "" not in seen
    assert get(stack.replicas["r3"].url + "/whoami")[0] == 200, "drained, not stopped"
    injector.heal(injection)
    assert "r3" in served_by(lb, 20) and not stack.drained


def test_rolling_restart_replaces_every_process_and_keeps_serving(stack, handle, injector):
    pids = {n: r.pid for n, r in stack.replicas.items()}
    with Prober(stack.nginx.url + "/whoami") as prober:
        injection = injector.inject(build("rolling-restart", "all", handle, pause="0.3s"))
        time.sleep(0.3)
    assert injection.inject_error is None
    assert all(stack.replicas[n].pid != pid for n, pid in pids.items()), "every replica restarted"
    assert prober.ok > 20 and not prober.failures, f"requests failed during the rollout: {prober.failures[:5]}"
    assert set(prober.instances) == {"r1", "r2", "r3"}
    assert injector.heal(injection).outcome == "ok" and not stack.drained


def test_a_rolling_restart_interrupted_half_way_is_healed_to_a_clean_stack(stack, handle, injector):
    import threading

    fault = build("rolling-restart", "all", handle, pause="2s")
    worker = threading.Thread(target=injector.inject, args=(fault,))
    worker.start()
    try:
        wait_for(lambda: fault.restarted, 20, "the first replica to be restarted")
        injection = injector.active()[0]
        record = injector.heal(injection)  # interrupts the rollout between two replicas
    finally:
        worker.join(60)
    assert not worker.is_alive()
    assert record.outcome == "ok" and 1 <= len(fault.restarted) < 3, fault.restarted
    assert not stack.drained and all(r.alive() for r in stack.replicas.values())
    assert set(served_by(stack.nginx.url, 20)) == {"r1", "r2", "r3"}


def test_player_plays_faults_on_time_reports_them_active_and_heals_them(stack, handle):
    timeline = parse_timeline({"name": "t", "fault": [
        {"kind": "kill", "target": "r2", "at": "0.3s", "for": "1.5s"},
        {"kind": "drain", "target": "r1", "at": "0.6s", "for": "1s"},
    ]}, "inline")
    journal = Journal.in_run_dir(stack.run_dir)
    lines: list[str] = []
    player = TimelinePlayer(timeline, handle, journal=journal, progress=lines.append)
    start = time.time()
    player.start(at=start)
    try:
        wait_for(lambda: len(player.active()) == 2, 5, "both faults active")
        assert "kill r2" in player.status() and "drain r1" in player.status()
        assert not stack.replicas["r2"].alive() and "r1" in stack.drained
        assert player.wait(timeout=15)
    finally:
        records = player.stop()
    assert sorted((r.kind, r.outcome) for r in records) == [("drain", "ok"), ("kill", "ok")]
    by_kind = {r.kind: r for r in records}
    assert abs(by_kind["kill"].start - (start + 0.3)) < 0.3, "faults start at their time after the shared start"
    assert 1.3 < by_kind["kill"].end - by_kind["kill"].start < 2.5
    assert stack.replicas["r2"].alive() and not stack.drained and player.status() == ""
    assert any("inject kill r2" in line for line in lines) and any("healed drain r1" in line for line in lines)


def test_stopping_the_player_heals_at_once_and_later_faults_never_start(stack, handle):
    timeline = parse_timeline({"name": "t", "fault": [
        {"kind": "pause", "target": "r3", "at": "0s", "for": "60s"},
        {"kind": "drain", "target": "r2", "at": "0s", "for": "60s"},
        {"kind": "kill", "target": "r1", "at": "30s", "for": "5s"},
    ]}, "inline")
    player = TimelinePlayer(timeline, handle)
    pid = stack.replicas["r3"].pid
    player.start()
    try:
        wait_for(lambda: len(player.active()) == 2, 5, "two faults active")
        wait_for(lambda: psutil.Process(pid).status() == psutil.STATUS_STOPPED, 2, "r3 to be stopped")
        t0 = time.monotonic()
    finally:
        # Also on a failed wait: the module's stack must not meet a kill at 30s.
        records = player.stop()
    assert time.monotonic() - t0 < 10
    assert sorted(r.kind for r in records) == ["drain", "pause"] and all(r.outcome == "ok" for r in records)
    wait_for(lambda: psutil.Process(pid).status() != psutil.STATUS_STOPPED, 2, "r3 to run again")
    assert not stack.drained
    assert stack.replicas["r1"].alive(), "the kill due at 30s never happened"
    journal = read_journal(stack.run_dir / "faults.jsonl")
    assert not [r for r in journal if r.active], "the journal is closed"


def test_scale_out_then_in_and_their_heals(stack, handle, injector):
    lb = stack.nginx.url
    out = injector.inject(build("scale-out", "stack", handle, count=1))
    assert out.fault.added == ["r4"] and "r4" in served_by(lb, 30)
    injector.heal(out)
    assert "r4" not in stack.replicas and "r4" not in served_by(lb, 20)

    gone_pid = stack.replicas["r3"].pid
    shrink = injector.inject(build("scale-in", "r3", handle))
    assert "r3" not in stack.replicas and gone(gone_pid)
    assert set(served_by(lb, 20)) == {"r1", "r2"}
    injector.heal(shrink)
    assert shrink.fault.replacements == ["r5"] and set(served_by(lb, 30)) == {"r1", "r2", "r5"}


def test_scale_in_refuses_to_remove_every_replica(stack, handle, injector):
    names = list(stack.replicas)
    injection = injector.inject(build("scale-in", "stack", handle, count=len(names)))
    assert "would leave none" in injection.inject_error
    assert injector.heal(injection).outcome == "inject_failed"
    assert list(stack.replicas) == names
