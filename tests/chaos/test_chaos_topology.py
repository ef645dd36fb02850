"""The replica set changes under load: rolling restart, scale out, reconnect storm."""

import pytest

from tests.chaos.chaos_support import assert_steady_order, counts, in_window, standard_load

pytestmark = pytest.mark.chaos


@pytest.mark.gauntlet(broker="redis")
def test_rolling_restart_keeps_serving_and_loses_nothing(gauntlet_load, gauntlet_nemesis, gauntlet_verdict):
    standard_load(gauntlet_load, seconds=28)
    gauntlet_load.sleep_until(5)
    before = {n: gauntlet_nemesis.handle.replica_pid(n) for n in ("r1", "r2", "r3")}
    injection = gauntlet_nemesis.inject("rolling-restart", "all", pause="1s")
    gauntlet_nemesis.heal(injection)
    after = {n: gauntlet_nemesis.handle.replica_pid(n) for n in ("r1", "r2", "r3")}
    assert all(before[n] != after[n] for n in before), "every replica was restarted"
    checked = gauntlet_verdict()
    checked.assert_passed("delivery", "faults", "slo http_req_failed: rate<0.01")
    assert_steady_order(checked)
    assert counts(checked)["lost_eventual"] == 0


@pytest.mark.gauntlet(broker="redis", replicas=2)
def test_scale_out_from_2_to_4_during_load(gauntlet_load, gauntlet_nemesis, gauntlet_verdict):
    standard_load(gauntlet_load, seconds=24)
    gauntlet_load.sleep_until(6)
    injection = gauntlet_nemesis.inject("scale-out", "stack", count=2)
    scaled_at = injection.started
    gauntlet_load.sleep_until(22)
    gauntlet_load.wait()
    # Heal removes the added replicas; take the verdict on the records first.
    checked = gauntlet_verdict()
    checked.assert_passed("delivery", "faults")
    assert_steady_order(checked)
    http = checked.data().http
    served = set(in_window(http, "ts", scaled_at + 3, scaled_at + 60)["instance"].dropna())
    assert {"r3", "r4"} <= served, f"the new replicas took traffic (served by {sorted(served)})"


@pytest.mark.gauntlet(broker="redis")
def test_reconnect_storm_every_socket_comes_back(gauntlet_load, gauntlet_verdict):
    standard_load(gauntlet_load, seconds=22, scenario="reconnect_storm", extra=("--storm-at", "10s"))
    checked = gauntlet_verdict()
    checked.assert_passed("delivery")
    assert_steady_order(checked)
    conn = checked.data().conn
    connects = conn[conn.event == "connect"]
    subs = set(connects["sub"])
    per_sub = connects.groupby("sub").size()
    assert len(subs) >= 25 and (per_sub >= 2).mean() > 0.9, "nearly every subscriber reconnected in the storm"
    assert counts(checked)["lost_eventual"] == 0
