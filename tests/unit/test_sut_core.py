"""The reference SUT's pure parts: tokens, payloads, backoff, duplicate filter, watermark."""

from __future__ import annotations

import pytest

from harness.tokens import user_token as client_token
from sut.auth import bearer, is_publisher, user_token, verify_user_token
from sut.backoff import Backoff
from sut.fanout import ReceiptLog
from sut.hub import RecentIds
from sut.models import Notification, NotificationRef, parse_broker_payload, ref_payload


def test_tokens_round_trip_and_match_the_clients():
    token = user_token("s3cret", "u17")
    assert token == client_token("s3cret", "u17")
    assert verify_user_token("s3cret", token) == "u17"


@pytest.mark.parametrize("token", [None, "", "u17", "u17.", ".abc", "u17." + "0" * 64,
                                   user_token("other", "u17"), user_token("s3cret", "u17") + "0",
                                   "bad user." + user_token("s3cret", "u17").split(".")[1]])
def test_forged_or_malformed_tokens_are_refused(token):
    assert verify_user_token("s3cret", token) is None


def test_tokens_bind_the_user():
    mac = user_token("s3cret", "alice").split(".")[1]
    assert verify_user_token("s3cret", f"bob.{mac}") is None


def test_bearer_and_publisher_key():
    assert bearer("Bearer abc") == "abc" and bearer("bearer  abc ") == "abc"
    assert bearer("Basic abc") is None and bearer("Bearer ") is None and bearer(None) is None
    assert is_publisher("key", "Bearer key") and not is_publisher("key", "Bearer kex")
    assert not is_publisher("key", None)


def test_broker_payloads():
    note = Notification(5, "u1", "r2", {"key": "k", "sent_ts": 1.5, "deep": {"x": [1, None]}})
    assert parse_broker_payload(note.broker_payload()) == note
    assert parse_broker_payload(ref_payload(9)) == NotificationRef(9)
    broadcast = Notification(6, None, "r1", {})
    assert parse_broker_payload(broadcast.broker_payload()) == broadcast
    assert note.frame(replay=True)["replay"] is True and "replay" not in note.frame()
    for bad in ["", "nope", "[]", '{"id": "1"}', '{"id": 1, "user": 3, "origin": "r", "data": {}}',
                '{"id": 1, "user": "u", "origin": "r", "data": []}']:
        with pytest.raises(ValueError):
            parse_broker_payload(bad)


def test_backoff_doubles_to_the_cap_with_jitter_and_resets():
    backoff = Backoff(initial=0.1, cap=1.0)
    delays = [backoff.next_delay() for _ in range(8)]
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    for delay, ceiling in zip(delays, ceilings):
        assert ceiling / 2 <= delay <= ceiling
    backoff.reset()
    assert backoff.next_delay() <= 0.1


def test_recent_ids_forget_the_oldest():
    ids = RecentIds(3)
    assert [ids.add(i) for i in (1, 2, 2, 3)] == [True, True, False, True]
    ids.add(4)
    assert 1 not in ids and {2, 3, 4} == {i for i in range(5) if i in ids} and len(ids) == 3
    assert ids.add(1) is True


def test_low_watermark_ignores_recent_receipts():
    log = ReceiptLog(margin=10, window=60)
    assert log.low_watermark(now=0, floor=None) is None  # nothing can be owed yet
    assert log.low_watermark(now=0, floor=40) == 40
    log.record(50, now=100)
    log.record(53, now=105)
    log.record(52, now=108)  # out of id order: another replica's publish arrived late
    log.record(60, now=115)
    # At 118 only receipts up to 108 are old enough; 60 is not trusted yet.
    assert log.low_watermark(now=118, floor=40) == 53
    assert log.low_watermark(now=125.5, floor=40) == 60
    assert log.low_watermark(now=101, floor=40) == 40


def test_low_watermark_keeps_folded_receipts():
    log = ReceiptLog(margin=10, window=60)
    log.record(70, now=0)
    log.record(71, now=100)  # folds 70 out of the window
    assert log.low_watermark(now=100, floor=None) == 70
