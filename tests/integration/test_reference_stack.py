"""The reference SUT on the full local stack (fault proxies included): cross-instance
delivery per broker, the memory broker as the negative control, and a clean teardown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.smoke import run_smoke
from tests.support import assert_nothing_left, stack_pids

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.mark.parametrize("broker", ["redis", "postgres"])
def test_every_pair_of_replicas_delivers(stack_factory, broker):
    stack = stack_factory(replicas=3, broker=broker)
    result = run_smoke(stack.state(), messages=90)
    assert result.ok, result.table()
    cross = [pair for pair in result.pairs if pair[0] != pair[1]]
    assert len(cross) >= 4, "the load balancer should spread publishes over replicas"
    assert all(c.delivered == c.expected > 0 for c in result.pairs.values())


def test_memory_broker_loses_cross_instance_delivery(stack_factory):
    stack = stack_factory(replicas=3, broker="memory")
    result = run_smoke(stack.state(), messages=60, timeout=2.0)
    assert not result.ok
    for (publisher, subscriber), counts in result.pairs.items():
        if publisher == subscriber:
            assert counts.lost == 0, "same-instance delivery works on the memory broker"
        else:
            assert counts.delivered == 0 and counts.lost == counts.expected
    assert result.lost > 0


def test_full_stack_teardown_leaves_nothing(stack_factory):
    stack = stack_factory(replicas=3, broker="redis")
    assert stack.proxy is not None and len(stack.state().proxies) == 6
    pids = stack_pids(stack)
    ports = [stack.postgres.port, stack.redis.port, stack.nginx.port, stack.proxy.port]
    ports += [r.port for r in stack.replicas.values()]
    ports += [int(p.listen.rsplit(":", 1)[1]) for p in stack.state().proxies]
    tmp = stack.tmp
    stack.down()
    assert_nothing_left(pids, ports, tmp)


def test_smoke_cli_exits_1_and_shows_the_loss_on_the_memory_broker(tmp_path):
    env_state = ["--state", str(tmp_path / "stack.json")]

    def gauntlet(*args, timeout=90):
        return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=timeout)

    up = gauntlet("up", "--detach", "--broker", "memory", "--replicas", "2", *env_state)
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        smoke = gauntlet("smoke", "--messages", "20", "--timeout", "2s", *env_state)
        assert smoke.returncode == 1, smoke.stdout + smoke.stderr
        assert "r1 → r2" in smoke.stdout and "FAIL" in smoke.stdout
    finally:
        down = gauntlet("down", *env_state)
    # Checked after the block: an assert inside `finally` would replace the body's failure.
    assert down.returncode == 0, down.stdout + down.stderr
