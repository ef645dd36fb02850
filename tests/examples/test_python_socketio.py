"""examples/python-socketio: python-socketio with AsyncRedisManager, 3 replicas, described
only in its gauntlet.toml and driven through `gauntlet run --config` as a user would.

The baseline must pass with every publisher -> subscriber replica pair named (the load
balancer's header: the app never says which replica it is) and real-time order checked.
The Redis outage is the negative control: AsyncRedisManager answers 200 to publishes
it could not hand to Redis ("Cannot publish to redis... giving up") and its listener
reconnects with a growing backoff, so deliveries are lost during the fault and after
the heal, and recovery must say so."""

from __future__ import annotations

import pytest

from examples_support import (
    EXAMPLES, assert_baseline_passes,
    assert_matrix_names_every_replica, assert_outage_fails_with_loss_after_heal, assert_real_time_order_checked,
    pip_install,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(400)]
EXAMPLE = "python-socketio"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    problem = pip_install(EXAMPLES / EXAMPLE / "requirements.txt")
    if problem:
        pytest.skip(problem)
    return tmp_path_factory.mktemp(EXAMPLE)


def test_the_baseline_passes(baseline):
    assert_baseline_passes(baseline)


def test_the_replica_matrix_names_every_replica(baseline):
    assert_matrix_names_every_replica(baseline)


def test_real_time_order_is_checked(baseline):
    assert_real_time_order_checked(baseline)


def test_a_redis_outage_fails_on_delivery_with_loss_after_the_heal(outage):
    assert_outage_fails_with_loss_after_heal(outage)
    counts = outage.delivery["counts"]
    # AsyncRedisManager acknowledges what it could not publish: the loss is silent to the publisher.
    assert counts["failed"] == 0 and counts["acknowledged"] == counts["publishes"], counts
    assert "Cannot publish to redis... giving up" in outage.replica_log("r1")
    # python-socketio keeps running through the outage: no replica exited unasked.
    assert outage.check("replicas")["verdict"] == "pass", outage.check("replicas")
