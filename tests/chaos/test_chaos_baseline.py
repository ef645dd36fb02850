"""No faults: the baseline every other chaos test is measured against."""

import pytest

from tests.chaos.chaos_support import counts, standard_load

pytestmark = pytest.mark.chaos


@pytest.mark.parametrize("gauntlet_spec", [{"broker": "redis"}, {"broker": "postgres"}],
                         indirect=True, ids=["redis", "postgres"])
def test_baseline_delivers_everything_within_targets(gauntlet_spec, gauntlet_load, gauntlet_verdict):
    standard_load(gauntlet_load, seconds=20)
    checked = gauntlet_verdict()
    checked.assert_passed()  # every check, including p95 < 500 ms, p99 < 1 s, errors < 1 %
    c = counts(checked)
    assert c["expected_live"] >= 1000, "the load was too small to show a 1 % loss"
    assert c["lost_live"] == c["lost_eventual"] == c["duplicated"] == 0
    data = checked.data()
    assert set(data.recv["instance"].dropna()) == {"r1", "r2", "r3"}, "subscribers on every replica"
