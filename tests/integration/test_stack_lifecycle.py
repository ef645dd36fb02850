"""The local stack with a user's own app (tests/apps/tiny_app.py): bring-up, routing,
runtime changes, and a teardown that leaves no process, port or temp dir behind."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from harness.config import AppSpec
from harness.process import StartError
from harness.servers.replica import http_json
from tests.support import ROOT, TINY, assert_nothing_left, stack_pids

pytestmark = pytest.mark.integration

def served_by(url: str, n: int) -> Counter:
    seen = Counter()
    for _ in range(n):
        # A new connection each time: nginx balances per request across its workers.
        status, body = http_json(url + "/whoami")
        assert status == 200
        seen[body["instance"]] += 1
    return seen


def test_custom_app_stack_routes_over_every_replica_and_leaves_nothing(stack_factory):
    stack = stack_factory(replicas=3, app=TINY, fault_proxies=False)
    state = stack.state()
    assert [r.name for r in state.replicas] == ["r1", "r2", "r3"]
    assert set(served_by(state.lb_url, 30)) == {"r1", "r2", "r3"}
    # Each replica got the dependency URLs through its own template values.
    assert all(r.database_url.startswith("postgresql://") for r in state.replicas)
    state_file = Path(state.run_dir) / "state.json"
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600, "the state file holds secrets"
    assert json.loads(state_file.read_text())["publisher_key"] == state.publisher_key

    pids = stack_pids(stack)
    assert len(pids) >= 3 + 2 + 1 + 2  # replicas, postgres+redis, nginx master+workers
    ports = [stack.postgres.port, stack.redis.port, stack.nginx.port] + [r.port for r in stack.replicas.values()]
    tmp = stack.tmp
    stack.down()
    assert_nothing_left(pids, ports, tmp)
    assert (Path(state.run_dir) / "logs" / "r1.log").exists(), "logs stay in the run directory"


def test_restart_add_remove_and_drain_replicas(stack_factory):
    stack = stack_factory(replicas=2, app=TINY, fault_proxies=False)
    lb = stack.nginx.url
    old_pid = stack.replicas["r1"].pid
    stack.restart_replica("r1")
    assert stack.replicas["r1"].pid != old_pid
    assert set(served_by(lb, 20)) == {"r1", "r2"}

    name = stack.add_replica()
    assert name == "r3"
    assert set(served_by(lb, 30)) == {"r1", "r2", "r3"}

    stack.drain("r2")
    assert "r2" not in served_by(lb, 30)
    assert stack.state().replica("r2").status == "drained"
    stack.undrain("r2")
    assert "r2" in served_by(lb, 30)

    stack.remove_replica("r1")
    assert set(served_by(lb, 20)) == {"r2", "r3"}
    with pytest.raises(KeyError, match="no replica named 'r9'"):
        stack.restart_replica("r9")


def test_killed_replica_is_routed_around_and_restart_policy_brings_it_back(stack_factory):
    stack = stack_factory(replicas=2, app=TINY, fault_proxies=False, restart_delay=0.5)
    lb = stack.nginx.url
    victim = stack.replicas["r2"].pid
    os.kill(victim, signal.SIGKILL)
    time.sleep(0.3)
    # nginx retries a refused connection on the next replica: no request fails.
    assert served_by(lb, 10) == Counter({"r1": 10})
    deadline = time.monotonic() + 15
    while not (stack.replicas["r2"].alive() and stack.replicas["r2"].ready()):
        assert time.monotonic() < deadline, "restart policy did not bring r2 back"
        time.sleep(0.1)
    assert stack.replicas["r2"].pid != victim


def test_child_that_exits_early_fails_the_start_at_once_with_its_log(tmp_path):
    from harness.spec import StackSpec
    from harness.stack import LocalStack

    broken = AppSpec(command="{python} -c \"import sys; print('cannot bind {port}: boom'); sys.exit(3)\"",
                     env={}, health_path="/", ready_path=None, is_reference=False)
    stack = LocalStack(StackSpec(replicas=2, app=broken, fault_proxies=False, runs_dir=tmp_path, startup_timeout=60))
    t0 = time.monotonic()
    with pytest.raises(StartError) as err:
        stack.up()
    assert time.monotonic() - t0 < 10, "an early exit must not wait for the deadline"
    assert "exited with code 3" in str(err.value) and "boom" in str(err.value)
    assert not stack.tmp.exists()
    assert not stack.postgres.alive() and not stack.redis.alive()


def test_reaper_cleans_up_when_the_harness_is_killed(tmp_path):
    script = f"""
import sys, time
sys.path.insert(0, {str(ROOT)!r})
from harness.stack import LocalStack
from harness.spec import StackSpec
from tests.support import TINY
stack = LocalStack(StackSpec(replicas=2, app=TINY, fault_proxies=False, runs_dir={str(tmp_path)!r}))
stack.up()
print(stack.tmp, flush=True)
for s in [stack.postgres, stack.redis, stack.nginx, *stack.replicas.values()]:
    print(s.pid, flush=True)
time.sleep(120)
"""
    harness = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        tmp = Path(harness.stdout.readline().strip())
        pids = {int(harness.stdout.readline()) for _ in range(5)}
        assert tmp.exists() and all(psutil.pid_exists(p) for p in pids)
        harness.kill()  # SIGKILL: no finally, no atexit in the harness
        harness.wait(5)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (tmp.exists() or any(psutil.pid_exists(p) for p in pids)):
            time.sleep(0.1)
        assert not tmp.exists(), "the reaper did not remove the temp dir"
        assert not [p for p in pids if psutil.pid_exists(p)], "the reaper left processes running"
    finally:
        if harness.poll() is None:
            harness.kill()
        harness.stdout.close()
