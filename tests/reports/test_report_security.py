"""The security check: 0 of N hostile attempts accepted passes; any accepted one fails
and names the request; no attempts, or none answered, cannot be judged."""

from __future__ import annotations

import json

from reports import security
from reports.records import load_run
from reports.verdict import Verdict, evaluate_run


def test_every_attempt_refused_passes_with_the_count(mini):
    for t in range(6):
        mini.hostile(t, kind="ws-forged" if t % 2 else "read-truncated", transport="ws" if t % 2 else "http")
    result = security.check(load_run(mini.write()))
    assert result.verdict is Verdict.PASS
    assert result.summary == "0 of 6 hostile attempts accepted (6 refused)"
    assert result.details["transports"] == ["http", "ws"]


def test_one_accepted_attempt_fails_naming_the_request(mini):
    for t in range(5):
        mini.hostile(t)
    mini.hostile(6, kind="publish-key-missing", outcome="accepted", status=201, request="POST /api/notifications",
                 user="u3")
    result = security.check(load_run(mini.write()))
    assert result.verdict is Verdict.FAIL
    assert result.summary.startswith("1 of 6 hostile attempts accepted; first: publish-key-missing "
                                     "POST /api/notifications as u3")
    assert result.details["accepted_attempts"][0]["status"] == 201


def test_no_attempts_or_none_answered_is_unknown(mini):
    mini.connect("a", "u1", 0)
    root = mini.write()
    result = security.check(load_run(root))
    assert result.verdict is Verdict.UNKNOWN and "no hostile attempt was recorded" in result.summary
    (root / "records" / "w0" / "meta.json").write_text(json.dumps({"worker": "w0", "hostile": 0}))
    assert "switched off (--hostile 0)" in security.check(load_run(root)).summary
    mini.hostile(1, outcome="error", status=502)
    result = security.check(load_run(mini.write()))
    assert result.verdict is Verdict.UNKNOWN and "none was answered" in result.summary


def test_security_is_in_every_verdict_summary_and_junit(mini):
    mini.connect("a", "u1", 0)
    mini.hostile(3, outcome="accepted", status=200)
    outcome = evaluate_run(mini.write())
    assert "security" in [c.name for c in outcome.checks]
    assert outcome.exit_code == 1
    summary = json.loads(outcome.summary_path.read_text())
    assert [c for c in summary["checks"] if c["name"] == "security"][0]["verdict"] == "fail"
    assert 'name="security"' in outcome.junit_path.read_text()


def test_a_target_without_any_credential_leaves_the_check_out_and_says_so(mini):
    mini.connect("a", "u1", 0)
    mini.publish("k1", 10, user="u1")
    mini.recv("a", "u1", "k1", 10.05)
    mini.publish("k2", 11, user="u1")
    mini.recv("a", "u1", "k2", 11.05)
    root = mini.write()
    (root / "records" / "w0" / "meta.json").write_text(json.dumps({"worker": "w0", "hostile": 1,
                                                                   "hostile_kinds": []}))
    outcome = evaluate_run(root)
    assert "security" not in [c.name for c in outcome.checks]
    assert security.NOT_APPLICABLE in outcome.notes
