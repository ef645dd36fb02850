"""`--backend docker` against a real engine: bring-up, faults through the Docker API,
the state file that `gauntlet smoke|status|chaos` read, and teardown that leaves no
container, network or volume behind (also after SIGKILL of the harness and Ctrl-C)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from harness.spec import DockerOptions, StackSpec
from tests.docker.docker_support import ROOT, TIMINGS, gauntlet, published_addresses, read_state, run_labels
from tests.support import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def docker_stack(docker_client, tmp_path):
    from harness.backends import make_stack

    stacks = []

    def make(**fields):
        fields.setdefault("runs_dir", tmp_path / "runs")
        stack = make_stack(StackSpec(backend="docker", **fields))
        stacks.append(stack)
        t0 = time.monotonic()
        stack.up()
        TIMINGS.setdefault("docker stack up", time.monotonic() - t0)
        return stack

    yield make
    for stack in stacks:
        stack.down()


def test_docker_stack_faults_through_the_api_and_teardown_leaves_nothing(docker_client, docker_stack):
    from chaos.target import LocalHandle
    from harness.smoke import run_smoke

    stack = docker_stack(replicas=2)
    run = stack.run
    assert set(published_addresses(docker_client, run)) == {"127.0.0.1"}
    state = stack.publish_state()
    assert state.spec["backend"] == "docker" and [r.name for r in state.replicas] == ["r1", "r2"]
    # The load balancer names the answering replica, as the embedded one does.
    import json
    import urllib.request

    from common.state import REPLICA_HEADER

    for _ in range(4):
        with urllib.request.urlopen(state.lb_url + "/api/health", timeout=5) as resp:
            assert resp.headers[REPLICA_HEADER] == json.loads(resp.read())["instance"]
    smoke = run_smoke(state, messages=20, per_replica=1, timeout=5)
    assert smoke.ok and {pair for pair in smoke.pairs} >= {("r1", "r2"), ("r2", "r1")}, smoke.table()

    handle = LocalHandle(stack)
    pid = handle.replica_pid("r2")
    handle.signal_replica("r2", signal.SIGKILL)
    wait_for(lambda: not handle.replica_alive("r2"), 10, "r2 killed")
    assert stack.replica("r2").container.attrs["State"]["ExitCode"] == 137
    # A dead replica refuses at once, as a dead process does in the embedded stack: its
    # address outlives its container, so nginx's next try goes elsewhere without waiting.
    t0 = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((stack.replica("r2").address, 8000), timeout=1.5).close()
    assert time.monotonic() - t0 < 1.5
    assert handle.revive_replica("r2") and handle.replica_pid("r2") not in (None, pid)

    handle.signal_replica("r1", signal.SIGSTOP)
    assert stack.replica("r1").status() == "paused" and handle.replica_alive("r1")
    handle.signal_replica("r1", signal.SIGCONT)
    assert stack.replica("r1").status() == "running"

    added = handle.add_replica()
    assert added == "r3" and stack.replica("r3").ready()
    handle.remove_replica("r3")
    assert "r3" not in handle.replica_names()

    handle.crash_dependency("redis")
    assert not handle.dependency_alive("redis")
    handle.restart_dependency("redis")
    assert handle.dependency_alive("redis")
    state = stack.publish_state()
    assert run_smoke(state, messages=20, per_replica=1, timeout=5).ok

    t0 = time.monotonic()
    stack.down()
    TIMINGS.setdefault("docker stack down", time.monotonic() - t0)
    assert run not in run_labels(docker_client)
    assert (stack.run_dir / "logs" / "r2.log").stat().st_size > 0  # logs kept in the run dir


def test_a_run_killed_with_sigkill_is_reaped(docker_client, tmp_path):
    """`gauntlet up --detach`, then SIGKILL of the harness: the reaper removes the run."""
    done = gauntlet("up", "--backend", "docker", "--replicas", "1", "--detach", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    state = read_state(tmp_path / ".gauntlet" / "stack.json")
    run = state["spec"]["docker_run"]
    assert run in run_labels(docker_client)
    os.kill(state["harness_pid"], signal.SIGKILL)
    wait_for(lambda: run not in run_labels(docker_client), 30, "the reaper to remove the run's containers")


def test_ctrl_c_tears_the_docker_stack_down(docker_client, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "up", "--backend", "docker", "--replicas", "1"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        state = tmp_path / ".gauntlet" / "stack.json"
        # Served: the state names the control API, which starts once the stack is up.
        wait_for(lambda: state.exists() and read_state(state).get("control_url"), 90, "the stack to be served")
        run = read_state(state)["spec"]["docker_run"]
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "stack down" in out
    assert run not in run_labels(docker_client)
    assert not (tmp_path / ".gauntlet" / "stack.json").exists()


@pytest.mark.parametrize("case", ["no daemon", "missing image", "port in use", "missing app image"])
def test_bad_input_gets_one_clear_line_before_anything_starts(docker_client, tmp_path, case):
    env, args = {}, ["up", "--backend", "docker", "--detach"]
    holder = None
    if case == "no daemon":
        env["DOCKER_HOST"] = f"unix://{tmp_path}/nothing.sock"
        expected = "no Docker daemon answers at"
    elif case == "missing image":
        args += ["--toxiproxy-image", "gauntlet-test/no-such-image:1"]
        expected = "image gauntlet-test/no-such-image:1 (toxiproxy) is not in the Docker daemon"
    elif case == "port in use":
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        args += ["--port", str(holder.getsockname()[1])]
        expected = "is in use"
    else:
        (tmp_path / "gauntlet.toml").write_text('[app]\nhealth_path = "/"\n[app.docker]\nimage = "nobody/app:0"\n')
        expected = "image nobody/app:0 (replica) is not in the Docker daemon"
    before = run_labels(docker_client)
    try:
        done = gauntlet(*args, cwd=tmp_path, env=env, timeout=60)
    finally:
        if holder is not None:
            holder.close()
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and expected in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert run_labels(docker_client) == before  # nothing was started


def test_state_file_drives_gauntlet_chaos_from_another_process(docker_client, tmp_path):
    """`gauntlet chaos` in a second process: kill and pause through the harness's API, latency
    through the proxy's, each healed; the stack still delivers afterwards."""
    done = gauntlet("up", "--backend", "docker", "--replicas", "2", "--detach", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    state = read_state(tmp_path / ".gauntlet" / "stack.json")
    try:
        for args in (["kill", "r2", "--for", "1s"], ["pause", "r1", "--for", "1s"],
                     ["latency", "redis@r1", "--for", "1s"]):
            chaos = gauntlet("chaos", *args, cwd=tmp_path, timeout=90)
            assert chaos.returncode == 0 and "healed" in chaos.stdout, chaos.stdout + chaos.stderr
        smoke = gauntlet("smoke", "--per-replica", "1", cwd=tmp_path, timeout=60)
        assert smoke.returncode == 0 and "PASS" in smoke.stdout, smoke.stdout
        journal = (tmp_path / "runs").glob("*/faults.jsonl")
        assert any('"kind": "pause"' in j.read_text() for j in journal)
    finally:
        down = gauntlet("down", cwd=tmp_path, timeout=90)
    assert down.returncode == 0, down.stderr
    assert state["spec"]["docker_run"] not in run_labels(docker_client)


def test_toxiproxy_image_option_and_fixed_port(docker_client, docker_stack):
    """--toxiproxy-image picks the proxy's image (here gauntlet's own, under another tag);
    --port publishes the load balancer on that 127.0.0.1 port."""
    docker_client.images.get("gauntlet/faultproxy:latest").tag("gauntlet-test/toxiproxy", "other")
    try:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        stack = docker_stack(replicas=1, lb_port=port,
                             docker=DockerOptions(toxiproxy_image="gauntlet-test/toxiproxy:other"))
        assert stack.state().lb_url == f"http://127.0.0.1:{port}"
        assert stack.components["toxiproxy"].container.image.tags[0].startswith("gauntlet")
        assert "gauntlet-test/toxiproxy:other" in stack.components["toxiproxy"].container.image.tags
        assert [p.name for p in stack.state().proxies] == ["postgres-r1", "redis-r1"]
    finally:
        docker_client.images.remove("gauntlet-test/toxiproxy:other")


def test_smoke_with_a_backend_brings_its_own_stack_and_shows_cross_instance_loss(docker_client, tmp_path):
    """`gauntlet smoke --backend docker --broker memory`: the memory broker's cross-instance
    loss shows per pair, exit 1, and the smoke's own stack is gone afterwards."""
    before = run_labels(docker_client)
    done = gauntlet("smoke", "--backend", "docker", "--broker", "memory", "--replicas", "2", "--per-replica", "1",
                    cwd=tmp_path, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    rows = {line.split()[0] + line.split()[2]: line.split()[3:] for line in done.stdout.splitlines()
            if line.startswith("r") and "→" in line}
    assert rows["r1r2"][1] == "0" and rows["r1r1"][1] != "0", done.stdout  # delivered across: none
    assert not run_labels(docker_client) - before - {"compose"}  # another session's runs are not ours


def test_a_daemon_started_again_removes_the_runs_it_stopped(docker_client):
    """A run whose containers all exited (the daemon went down under it) is removed; a run
    with a container still running is somebody's live stack and stays."""
    from harness.docker.cleanup import remove_orphans
    from harness.docker.images import LOCAL_BASE, REGISTRY_BASE, has_image
    from harness.docker.topology import RUN_LABEL

    base = LOCAL_BASE if has_image(docker_client, LOCAL_BASE) else REGISTRY_BASE
    made = []
    try:
        for run, command in (("orphan01", ["true"]), ("livetest", ["sleep", "60"])):
            network = docker_client.networks.create(f"gauntlet-{run}", labels={RUN_LABEL: run})
            made.append(network)
            container = docker_client.containers.run(base, command, detach=True, labels={RUN_LABEL: run},
                                                     network=network.name)
            made.append(container)
        made[1].wait(timeout=30)
        removed = remove_orphans(docker_client, among={"orphan01", "livetest"})
        assert removed == ["orphan01"], removed
        labels = run_labels(docker_client)
        assert "orphan01" not in labels and "livetest" in labels, labels
    finally:
        for thing in reversed(made):
            try:
                thing.remove(force=True) if hasattr(thing, "exec_run") else thing.remove()
            except Exception:  # removed by the test itself
                pass
