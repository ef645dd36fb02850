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
    kinds = {a["kind"] for a in accepted}
    assert kinds & {"ws-forged", "read-forged", "publish-key-forged"}, kinds
    assert {a["transport"] for a in accepted} == {"http", "ws"}, accepted
    assert result.summary.startswith(f"{result.details['accepted']:,} of {result.details['attempts']:,} "
                                     "hostile attempts accepted; first: ")
    # Refusals that do not depend on the MAC still hold: no token, another user's token.
    by_kind = {row["kind"]: row for row in result.details["by_kind"]}
    for kind in ("ws-missing", "read-missing", "read-other-user", "publish-key-missing"):
        if kind in by_kind:
            assert by_kind[kind].get("accepted", 0) == 0, by_kind[kind]
