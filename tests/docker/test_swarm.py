"""`--backend swarm` on a single-node Swarm: the replicas are one service (dnsrr), nginx a
plain container published on 127.0.0.1; a task killed or paused, scale by service update,
a rolling restart by the update policy; the run's verdict as on the embedded stack; the
swarm the test created is left again and nothing of the run remains."""

from __future__ import annotations

import json
import signal
import time

import pytest

from harness.spec import StackSpec
from tests.docker.docker_support import TIMINGS, gauntlet, published_addresses, run_labels
from tests.support import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def no_swarm(docker_client):
    """These tests create the swarm themselves; one they did not create is never touched."""
    if docker_client.info()["Swarm"].get("LocalNodeState") == "active":
        pytest.skip("the daemon is already in a swarm that this test did not create")
    yield
    assert docker_client.info()["Swarm"].get("LocalNodeState") == "inactive", "the created swarm was not left"


def test_swarm_stack_tasks_scale_rolling_restart_and_teardown(docker_client, no_swarm, tmp_path):
    from chaos.target import LocalHandle
    from harness.backends import make_stack
    from harness.smoke import run_smoke

    stack = make_stack(StackSpec(backend="swarm", replicas=2, runs_dir=tmp_path / "runs"))
    t0 = time.monotonic()
    try:
        state = stack.up()
        TIMINGS["swarm stack up"] = time.monotonic() - t0
        assert stack.created_swarm
        assert set(published_addresses(docker_client, stack.run)) == {"127.0.0.1"}
        service = docker_client.services.get(stack.service_name)
        assert service.attrs["Spec"]["EndpointSpec"]["Mode"] == "dnsrr"
        assert service.attrs["Spec"]["Mode"]["Replicated"]["Replicas"] == 2
        assert run_smoke(state, messages=20, per_replica=1, timeout=5).ok

        handle = LocalHandle(stack)
        pid = handle.replica_pid("r2")
        handle.signal_replica("r2", signal.SIGKILL)
        wait_for(lambda: handle.replica_pid("r2") != pid, 10, "r2's task killed")
        handle.revive_replica("r2")  # Swarm's restart policy brings a new task into slot 2
        assert handle.replica_alive("r2") and handle.replica_pid("r2") not in (None, pid)

        handle.signal_replica("r1", signal.SIGSTOP)
        assert stack.replica("r1").status() == "paused"
        handle.signal_replica("r1", signal.SIGCONT)
        assert stack.replica("r1").status() == "running"

        assert handle.add_replica() == "r3"
        service.reload()
        assert service.attrs["Spec"]["Mode"]["Replicated"]["Replicas"] == 3
        handle.remove_replica("r3")
        assert len(handle.replica_names()) == 2

        before = {s: t["ID"] for s, t in stack.current_tasks(max_age=0).items()}
        stack.rolling_restart()
        after = {s: t["ID"] for s, t in stack.current_tasks(max_age=0).items()}
        assert set(after) == set(before) and not set(after.values()) & set(before.values())
        assert run_smoke(stack.publish_state(), messages=20, per_replica=1, timeout=5).ok
    finally:
        t1 = time.monotonic()
        stack.down()
        TIMINGS["swarm stack down"] = time.monotonic() - t1
    assert stack.run not in run_labels(docker_client)


def test_gauntlet_run_replica_kill_passes_on_swarm(docker_client, no_swarm, tmp_path):
    done = gauntlet("run", "ramp", "--backend", "swarm", "--chaos", "replica-kill", "--replicas", "3",
                    "--broker", "redis", "--stages", "5s:30,40s:30", "--quiet", "--seed", "11",
                    cwd=tmp_path, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    summary = json.loads(next(tmp_path.glob("runs/*/summary.json")).read_text())
    verdicts = {c["name"]: c["verdict"] for c in summary["checks"]}
    assert verdicts["delivery"] == "pass" and verdicts["faults"] == "pass", verdicts
    state = json.loads(next(tmp_path.glob("runs/*/state.json")).read_text())
    assert state["spec"]["backend"] == "swarm"
    assert state["spec"]["docker_run"] not in run_labels(docker_client)
