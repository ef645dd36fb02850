"""Load shapes that open races: readers that are slow or stop reading, clients that
vanish without a close, and a publish burst timed at a heal. The others must not pay
for them (the isolation check), and nothing may be lost."""

import pytest

from tests.chaos.chaos_support import assert_steady_order, counts, standard_load

pytestmark = pytest.mark.chaos

BURST = 25


@pytest.mark.gauntlet(broker="redis")
def test_stalled_slow_and_vanishing_subscribers_cost_the_others_nothing(gauntlet_load, gauntlet_nemesis,
                                                                        gauntlet_verdict):
    standard_load(gauntlet_load, seconds=13, extra=(
        "--stalled-readers", "2", "--stall-every", "6s", "--stall-for", "3s",
        "--slow-readers", "2", "--slow-read-delay", "150ms",
        "--vanishing", "2", "--vanish-every", "4s", "--heal-burst", str(BURST)))
    gauntlet_load.sleep_until(5)
    # A fault whose heal times the burst and changes nothing else the subscribers see.
    gauntlet_nemesis.fault("latency", "postgres", hold=2, latency="20ms")
    checked = gauntlet_verdict()
    checked.assert_passed("delivery", "isolation")
    assert_steady_order(checked)
    iso = checked.check("isolation").details
    assert iso["shaped"] == {"slow": 2, "stalled": 2, "vanishing": 2}, iso
    assert iso["others_owed_live"] >= 500 and iso["others_late"] == 0
    assert iso["shaped_p99_ms"] >= 1000, f"the stalls should have shown in their own latency: {iso}"
    assert counts(checked)["lost_eventual"] == 0
    data = checked.data()
    vanished = data.conn[(data.conn.event == "disconnect") & (data.conn.detail == "vanished without a close")]
    assert len(vanished) >= 2, "vanishing clients dropped their sockets without a close"
    heal = max(f.end for f in data.faults if f.kind == "latency")
    burst = data.pub[(data.pub.ts_intended >= heal) & (data.pub.ts_intended <= heal + 1.0)]
    assert len(burst) >= 4 * BURST, f"each of 4 publishers bursts {BURST} at the heal, {len(burst)} sent"
