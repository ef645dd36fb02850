"""A replica dies, is stopped gracefully, or hangs, while load runs."""

import pytest

from tests.chaos.chaos_support import assert_steady_order, counts, in_window, standard_load

pytestmark = pytest.mark.chaos


@pytest.mark.parametrize("gauntlet_spec", [{"broker": "redis"}, {"broker": "postgres"}],
                         indirect=True, ids=["redis", "postgres"])
def test_replica_kill_clients_reconnect_and_lose_nothing(gauntlet_spec, gauntlet_load, gauntlet_nemesis,
                                                         gauntlet_verdict):
    standard_load(gauntlet_load)
    gauntlet_load.sleep_until(6)
    gauntlet_nemesis.fault("kill", "r2", hold=8)
    checked = gauntlet_verdict()
    checked.assert_passed("delivery", "faults", "recovery", "replicas")  # the kill was the fault's, asked for
    assert_steady_order(checked)
    assert counts(checked)["lost_eventual"] == 0
    conn = checked.data().conn
    dropped = conn[(conn.event == "disconnect") & (conn.instance == "r2")]
    assert len(dropped) >= 3, "the kill should have dropped r2's sockets"
    resumed = conn[(conn.event == "resume") & conn["sub"].isin(dropped["sub"])]
    assert set(resumed["sub"]) == set(dropped["sub"]), "every dropped subscriber reconnected and resumed"
    # The recovery check passes with no faults at all, so look for the kill's own entry.
    kills = [f for f in checked.check("recovery").details["faults"] if (f["kind"], f["target"]) == ("kill", "r2")]
    assert len(kills) == 1, f"the recovery check should have measured the kill: {kills}"
    assert kills[0]["status"] == "recovered" and kills[0]["latency_recovered_s"] is not None \
        and kills[0]["delivery_recovered_s"] is not None, \
        f"delivery should have recovered after the kill: {kills[0]}"


@pytest.mark.gauntlet(broker="redis")
def test_sigterm_is_graceful_sockets_close_with_1001(gauntlet_load, gauntlet_nemesis, gauntlet_verdict):
    standard_load(gauntlet_load, seconds=20)
    gauntlet_load.sleep_until(6)
    with gauntlet_nemesis.active("terminate", "r2") as injection:
        start = injection.started
        # A graceful stop is quick: the replica must be gone well within its grace.
        stack = gauntlet_nemesis.handle
        deadline = start + 8
        import time
        while stack.replica_alive("r2") and time.time() < deadline:
            time.sleep(0.1)
        assert not stack.replica_alive("r2"), "r2 did not exit within 8 s of SIGTERM"
        time.sleep(2)
    checked = gauntlet_verdict()
    checked.assert_passed("delivery", "slo http_req_failed: rate<0.01")
    assert_steady_order(checked)
    conn = checked.data().conn
    closed = in_window(conn[(conn.event == "disconnect") & (conn.instance == "r2")], "ts", start, start + 10)
    assert len(closed) >= 3, "r2's sockets should have been closed by its shutdown"
    assert set(closed["code"].astype(int)) == {1001}, "graceful shutdown closes every socket with 1001"


@pytest.mark.gauntlet(broker="redis")
def test_paused_replica_stalls_but_loses_nothing(gauntlet_load, gauntlet_nemesis, gauntlet_verdict):
    standard_load(gauntlet_load, seconds=22)
    gauntlet_load.sleep_until(6)
    with gauntlet_nemesis.active("pause", "r2") as injection:
        start = injection.started
        import time
        time.sleep(6)
    checked = gauntlet_verdict()
    checked.assert_passed("delivery", "faults")
    assert_steady_order(checked)
    assert counts(checked)["lost_eventual"] == 0
    data = checked.data()
    # A hung replica is not routed around (nginx has only passive health checks):
    # requests it had taken wait for it, and the stall shows in the slowest responses.
    stalled = in_window(data.http, "ts", start, start + 6)
    assert stalled["dur_ms"].max() >= 4000, "requests sent to the paused replica should have stalled"
