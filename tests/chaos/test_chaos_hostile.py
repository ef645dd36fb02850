"""Hostile traffic mixed into the load: the reference SUT refuses every broken
credential, and the security check catches an app whose auth was weakened."""

import pytest

from tests.chaos.chaos_support import standard_load

pytestmark = pytest.mark.chaos


@pytest.mark.gauntlet(broker="redis", replicas=2, replica_env={"SUT_DEFECTS": "accept-any-token"})
def test_weakened_auth_fails_the_security_check_naming_the_request(gauntlet_load, gauntlet_verdict):
    standard_load(gauntlet_load, seconds=8, users=12, extra=("--hostile", "2", "--hostile-rate", "4"))
    checked = gauntlet_verdict()
    result = checked.check("security")
    assert result.verdict.value == "fail", result.summary
    accepted = result.details["accepted_attempts"]
    by_kind = {row["kind"]: row for row in result.details["by_kind"]}
    # Every kind is tried in a run (the deck); the weakened MAC lets each forgery through.
    for kind in ("ws-forged", "read-forged", "publish-key-forged"):
        assert by_kind[kind].get("accepted", 0) > 0, by_kind.get(kind)
    # The examples name the transport of their request (both are among the acceptances).
    assert accepted and all(a["transport"] == ("ws" if a["kind"].startswith("ws-") else "http")
                            for a in accepted), accepted
    assert result.summary.startswith(f"{result.details['accepted']:,} of {result.details['attempts']:,} "
                                     "hostile attempts accepted; first: ")
    # Refusals that do not depend on the MAC still hold: no token, another user's token.
    for kind in ("ws-missing", "read-missing", "read-other-user", "publish-key-missing"):
        assert by_kind[kind].get("refused", 0) > 0 and by_kind[kind].get("accepted", 0) == 0, by_kind.get(kind)
