"""Traffic shapes that open boundaries: large multibyte payloads across the Postgres
broker's NOTIFY limit (8000 bytes), where the reference SUT sends a reference and every
receiver reads the row back."""

import json
import urllib.request

import pytest

from tests.chaos.chaos_support import assert_steady_order, counts, standard_load

pytestmark = pytest.mark.chaos


@pytest.mark.gauntlet(broker="postgres")
def test_postgres_broker_delivers_payloads_over_the_notify_limit_intact(gauntlet_load, gauntlet_stack,
                                                                         gauntlet_verdict):
    standard_load(gauntlet_load, seconds=11, extra=("--payload-size", "6000..12000"))
    checked = gauntlet_verdict()
    checked.assert_passed("delivery", "security")  # the default hostile user ran beside the load
    assert_steady_order(checked)
    c = counts(checked)
    assert c["lost_eventual"] == c["corrupted"] == 0
    assert c["intact_checked"] == c["frames"] >= 500, "every frame's payload digest was checked"
    pub = checked.data().pub
    refused = pub[pub["outcome"] != "ok"]
    assert len(pub) >= 100 and refused.empty, \
        f"every payload of the range is accepted: {len(refused)} refused, e.g. {refused.head(3).to_dict('records')}"
    security = checked.check("security").details
    assert security["attempts"] >= 5 and security["transports"] == ["http", "ws"], security
    refs = 0
    for replica in gauntlet_stack.state().replicas:
        with urllib.request.urlopen(f"{replica.url}/api/metrics", timeout=5) as resp:
            refs += int(json.load(resp)["broker"].get("refs_sent", 0))
    assert refs >= 100, f"the large-payload path (NOTIFY by reference) should have been taken, {refs} refs sent"
