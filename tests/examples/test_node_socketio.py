"""examples/node-socketio: socket.io with @socket.io/redis-adapter (node-redis 4), 3
replicas, described only in its gauntlet.toml (health by TCP: the app has no health
route) and driven through `gauntlet run --config` as a user would. npm installs the
committed package-lock.json first; an unreachable registry skips with one line.

What is true of this stack, and what the tests hold gauntlet to:
- Real-time order is not kept across replicas: socket.io emits to its own sockets at
  once and publishes to Redis for the others, so a message acknowledged by one replica
  can arrive after a newer one published on the subscriber's own replica. Most
  baselines show a few such pairs (margins of milliseconds); the baseline then fails on
  the order threshold alone, and its delivery, matrix and replicas still pass.
- A Redis outage fails the run either way it goes. The server is the adapter's
  documented setup: node-redis logs "missing 'error' handler on this Redis client" and
  reconnects, and socket.io acknowledges publishes whose fan-out is lost (delivery
  fails, with loss after the heal in recovery); or a publish written into the socket
  Redis just closed rejects unhandled (EPIPE) and the replica exits with code 1, which
  the replicas check fails, naming each replica, its exit code and log."""

from __future__ import annotations

import pytest

from examples_support import (
    EXAMPLES, assert_baseline_passes,
    assert_matrix_names_every_replica, assert_outage_fails_with_loss_after_heal, npm_install,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(500)]
EXAMPLE = "node-socketio"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    problem = npm_install(EXAMPLES / EXAMPLE)
    if problem:
        pytest.skip(problem)
    return tmp_path_factory.mktemp(EXAMPLE)


def test_the_baseline_delivers_everything_and_names_what_it_failed(baseline):
    if baseline.code == 0:
        assert_baseline_passes(baseline)
        return
    failed = [c["name"] for c in baseline.summary["checks"] if c["verdict"] != "pass"]
    assert failed == ["slo delivery_out_of_order{phase:steady}: count==0"], (failed, baseline.output[-3000:])
    realtime = baseline.delivery["order"]["orders"]["realtime"]
    assert realtime["violations"] == realtime["by_phase"]["steady"] > 0, realtime
    # Each violation names the pair: the one acknowledged first arrived behind the newer one.
    assert all(e["key"] and e["behind"] and e["phase"] == "steady" for e in realtime["examples"]), realtime
    assert baseline.code == 1 and baseline.summary["verdict"] == "fail"
    counts = baseline.delivery["counts"]
    assert counts["expected_live"] > 200 and counts["lost_live"] == counts["lost_eventual"] == 0, counts
    assert baseline.check("replicas")["verdict"] == "pass", baseline.check("replicas")


def test_the_replica_matrix_names_every_replica(baseline):
    assert_matrix_names_every_replica(baseline)


def test_real_time_order_is_checked(baseline):
    order = baseline.delivery["order"]
    assert order["summary"].startswith("order: real-time "), order["summary"]
    realtime = order["orders"]["realtime"]
    assert realtime["checked"] and realtime["required"] and realtime["judged"] > 100, realtime
    (slo,) = [c for c in baseline.summary["checks"] if c["name"].startswith("slo delivery_out_of_order")]
    assert "real-time order" in slo["summary"], slo
    assert (slo["verdict"] == "pass") == (realtime["by_phase"]["steady"] == 0), (slo, realtime)


def test_a_redis_outage_fails_the_run_and_says_why(outage):
    assert outage.code == 1, outage.output[-3000:]
    assert outage.summary["verdict"] == "fail"
    replicas = outage.check("replicas")
    exits = [line for line in (outage.run_dir / "replicas.jsonl").read_text().splitlines() if '"exited"' in line
             and '"teardown"' not in line and '"code": 1' in line]
    if replicas["verdict"] == "fail":
        # Replicas died during the fault: each is named in the verdict, with its exit code.
        assert exits, replicas
        for name in ("r1", "r2", "r3"):
            if any(f'"replica": "{name}"' in line for line in exits):
                assert f"{name} exited at" in replicas["summary"] and "exit code 1" in replicas["summary"], replicas
        assert "during fault f1" in replicas["summary"], replicas
        assert any("This socket has been ended by the other party" in outage.replica_log(n) or "EPIPE" in
                   outage.replica_log(n) for n in ("r1", "r2", "r3"))
        junit = (outage.run_dir / "junit.xml").read_text()
        assert 'name="replicas"' in junit and "exit code 1" in junit, junit[-2000:]
        return
    assert not exits, exits
    fault = assert_outage_fails_with_loss_after_heal(outage)
    counts = outage.delivery["counts"]
    assert counts["failed"] == 0 and counts["acknowledged"] == counts["publishes"], counts
    assert "missing 'error' handler on this Redis client" in outage.replica_log("r1")
    assert fault["status"] != "no baseline", fault
