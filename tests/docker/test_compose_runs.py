"""compose.yaml runs: Debian's docker-compose brings it up, `gauntlet smoke` checks
cross-instance delivery through it, a replica is killed, a latency toxic goes on through
the Toxiproxy API, and `docker-compose down -v` leaves nothing.

No registry answers on gauntlet's own machines, so the real Toxiproxy image the file
names is replaced by gauntlet's proxy image (GAUNTLET_TOXIPROXY_IMAGE), which speaks the
same API and takes the same flags."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time

import pytest

from tests.docker.docker_support import ROOT, TIMINGS, gauntlet
from tests.support import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def free_port() -> int:
    from harness.ports import free_port as pick

    return pick()


def test_compose_file_runs_smoke_kill_and_latency(docker_client, tmp_path):
    from chaos.toxiproxy_client import ToxiproxyClient
    from harness.docker.compose import compose_state, stopped_services
    from harness.smoke import run_smoke
    from common.state import write_state

    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose is not installed (apt-get install -y docker-compose)")
    project = f"gauntlet-test-{secrets.token_hex(3)}"
    secret, key = secrets.token_hex(16), secrets.token_hex(16)
    env = {**os.environ, "GAUNTLET_SECRET": secret, "GAUNTLET_PUBLISHER_KEY": key,
           "GAUNTLET_TOXIPROXY_IMAGE": "gauntlet/faultproxy:latest",
           "GAUNTLET_LB_PORT": str(free_port()), "GAUNTLET_PROXY_PORT": str(free_port())}
    base = [compose, "-f", str(ROOT / "compose.yaml"), "-p", project]

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([*base, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)

    state_path = tmp_path / "stack.json"
    try:
        # The fault proxy resolves its upstreams when it loads its routes: started before
        # postgres and redis exist on the network, it exits (2) naming the one it could
        # not resolve. compose.yaml orders it after them (depends_on); a stack with a
        # stopped container is reported at once, not after the ready deadline.
        alone = run("up", "-d", "--no-build", "--no-deps", "toxiproxy")
        assert alone.returncode == 0, alone.stderr
        stopped = wait_for(lambda: stopped_services(docker_client, project), 30, "the lone proxy to exit")
        assert len(stopped) == 1 and stopped[0].startswith("toxiproxy exited (exit 2)") \
            and "cannot resolve 'postgres'" in stopped[0], stopped

        t0 = time.monotonic()
        up = run("up", "-d", "--no-build")
        assert up.returncode == 0, up.stderr

        def ready():
            stopped = stopped_services(docker_client, project)
            assert not stopped, f"compose stack cannot get ready: {stopped}"
            try:
                state = compose_state(docker_client, secret=secret, publisher_key=key, run_dir=tmp_path,
                                      project=project)
            except (KeyError, IndexError, OSError):
                return None
            from harness.docker.stack import http_status

            if len(state.replicas) == 3 and all(http_status(r.url + "/api/ready") == 200 for r in state.replicas) \
                    and http_status(state.lb_url + "/api/health") == 200:
                return state
            return None

        # Measured: 12 s with warm images on a loaded 2-core machine; the deadline only
        # bounds a stack that is slow, a stopped container fails at once (above).
        state = wait_for(ready, 90, "the compose stack to be ready", interval=0.3)
        TIMINGS["compose up"] = time.monotonic() - t0
        assert [p.name for p in state.proxies] == [
            "postgres-r1", "postgres-r2", "postgres-r3", "redis-r1", "redis-r2", "redis-r3"]
        write_state(state, state_path)
        smoke = gauntlet("smoke", "--state", str(state_path), "--per-replica", "1", cwd=tmp_path, timeout=60)
        assert smoke.returncode == 0 and "PASS" in smoke.stdout, smoke.stdout + smoke.stderr

        # A replica kill: its container dies; the others keep delivering to each other.
        r2 = docker_client.containers.list(filters={"label": [f"com.docker.compose.project={project}",
                                                              "gauntlet.name=r2"]})[0]
        r2.kill()
        r2.reload()
        assert r2.status == "exited" and r2.attrs["State"]["ExitCode"] == 137
        for replica in state.replicas:
            if replica.name == "r2":
                replica.status = "exited"
        assert run_smoke(state, messages=20, per_replica=1, timeout=5).ok

        # A latency fault through the Toxiproxy API: every replica's Redis is 400 ms away.
        toxiproxy = ToxiproxyClient(state.proxy_api_url)
        for name in ("redis-r1", "redis-r3"):
            toxiproxy.add_toxic(name, "latency", {"latency": 400}, name="slow", stream="downstream")
        started = time.monotonic()
        slow = run_smoke(state, messages=4, per_replica=1, timeout=10)
        assert slow.ok and time.monotonic() - started >= 4 * 0.4, "each publish waits for Redis"
        for name in ("redis-r1", "redis-r3"):
            toxiproxy.remove_toxic(name, "slow")
        assert run("start", "r2").returncode == 0
        state = wait_for(ready, 60, "r2 to be ready again", interval=0.3)
        write_state(state, state_path)
        smoke = gauntlet("smoke", "--state", str(state_path), "--per-replica", "1", cwd=tmp_path, timeout=60)
        assert smoke.returncode == 0 and "PASS" in smoke.stdout, smoke.stdout
    finally:
        t1 = time.monotonic()
        down = run("down", "-v", "--timeout", "5")
        TIMINGS["compose down"] = time.monotonic() - t1
    assert down.returncode == 0, down.stderr
    flt = {"label": f"com.docker.compose.project={project}"}
    assert not docker_client.containers.list(all=True, filters=flt)
    assert not docker_client.networks.list(filters=flt)
    assert not docker_client.volumes.list(filters=flt)
    assert json.loads(state_path.read_text())["spec"]["backend"] == "compose"
