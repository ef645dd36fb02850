"""The Redis Streams broker's pure parts: where it may resume, and its settings."""

from __future__ import annotations

import pytest

from sut.brokers.redis_streams import StreamInfo, entry_id
from sut.config import ConfigError, load_config

BASE = ["--port", "8001", "--instance", "r1", "--database-url", "postgresql://u@127.0.0.1:5432/db",
        "--secret", "s", "--publisher-key", "k"]


def test_entry_ids_compare_in_stream_order():
    assert entry_id("1700000000000-10") > entry_id("1700000000000-9") > entry_id("1699999999999-99")
    assert entry_id(b"5-1") == (5, 1) and entry_id("7") == (7, 0)


@pytest.mark.parametrize(("info", "position", "gap"), [
    (StreamInfo(True, length=50, entries_added=50, first_id="10-0", last_id="60-0"), "30-0", None),
    (StreamInfo(True, length=50, entries_added=250, first_id="10-0", last_id="60-0"), "30-0", None),  # trimmed before
    (StreamInfo(True, length=50, entries_added=250, first_id="40-0", last_id="60-0"), "30-0", "trimmed past"),
    (StreamInfo(True, length=50, entries_added=50, first_id="40-0", last_id="60-0"), "30-0", None),  # never trimmed
    (StreamInfo(True, length=5, entries_added=5, first_id="1-0", last_id="20-0"), "30-0", "redis lost entries"),
    (StreamInfo(False), "30-0", "gone"),
    (StreamInfo(False), "0-0", None),  # nothing read yet from a stream that never existed
])
def test_a_position_the_stream_cannot_continue_from_is_a_gap(info, position, gap):
    reason = info.gap_after(position)
    assert (reason is None) if gap is None else (reason is not None and gap in reason)


def test_redis_streams_needs_a_redis_url_and_takes_a_bounded_maxlen():
    with pytest.raises(ConfigError, match="--broker redis-streams needs --redis-url"):
        load_config([*BASE, "--broker", "redis-streams"], environ={})
    config = load_config([*BASE, "--broker", "redis-streams", "--redis-url", "redis://127.0.0.1:1/0"], environ={})
    assert config.stream_maxlen == 50_000
    env = {"SUT_STREAM_MAXLEN": "1000"}
    assert load_config([*BASE, "--broker", "redis-streams", "--redis-url", "redis://x/0"], environ=env).stream_maxlen \
        == 1000
    with pytest.raises(ConfigError, match="--stream-maxlen must be between 100"):
        load_config([*BASE, "--stream-maxlen", "5"], environ={})
