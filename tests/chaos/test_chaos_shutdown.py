"""Graceful shutdown under slow in-flight requests: every request a replica had
accepted before its SIGTERM completes; a replica that exits at once drops them, and
the shutdown check says how many."""

import pytest

from tests.chaos.chaos_support import standard_load

pytestmark = pytest.mark.chaos

SLOW = ("--slow-requests", "9", "--slow-request-time", "2500ms")


def _terminate_r2(load, nemesis) -> None:
    standard_load(load, seconds=10, users=24, extra=SLOW)
    load.sleep_until(5)
    nemesis.fault("terminate", "r2", hold=3)


@pytest.mark.gauntlet(broker="redis", replicas=2)
def test_sigterm_lets_every_accepted_slow_request_complete(gauntlet_load, gauntlet_nemesis, gauntlet_verdict):
    _terminate_r2(gauntlet_load, gauntlet_nemesis)
    checked = gauntlet_verdict()
    checked.assert_passed("shutdown")
    details = checked.check("shutdown").details
    assert details["in_flight"] >= 3 and details["dropped"] == 0, details
    on_r2 = checked.data().http
    assert ((on_r2["instance"] == "r2") & on_r2["name"].astype(str).str.endswith("(slow)")).any()


@pytest.mark.gauntlet(broker="redis", replicas=2, replica_env={"SUT_DEFECTS": "exit-on-sigterm"})
def test_a_replica_that_exits_at_once_on_sigterm_fails_the_shutdown_check(gauntlet_load, gauntlet_nemesis,
                                                                          gauntlet_verdict):
    _terminate_r2(gauntlet_load, gauntlet_nemesis)
    result = gauntlet_verdict().check("shutdown")
    assert result.verdict.value == "fail", result.summary
    assert result.details["dropped"] >= 1 and result.details["dropped_requests"], result.details
    assert result.summary.startswith(f"{result.details['dropped']:,} of {result.details['in_flight']:,} requests "
                                     "in flight at a graceful stop were dropped")
