"""The WebSocket protocol on one replica: token check, init frame, live frames,
resume without duplicates, and tolerance of malformed client frames."""

from __future__ import annotations

import asyncio

import pytest
from sut_support import Subscriber, apublish, subscribe

pytestmark = pytest.mark.integration


@pytest.fixture
def replica(sut_factory, fresh_db):
    return sut_factory.start("r1", broker="postgres", database_url=fresh_db)


def ids(frames):
    return [f["id"] for f in frames]


@pytest.mark.parametrize("token", ["alice.0000", "", "alice", "bob." + "0" * 64])
async def test_bad_token_is_closed_with_4401(replica, token):
    sub = await Subscriber(replica.ws_url("alice", token=token)).connect()
    assert await sub.wait_closed(5) == 4401
    assert sub.init is None


async def test_init_frame_then_live_frames_for_own_user_and_broadcasts(replica):
    for i in range(25):
        await apublish(replica.url, "alice", {"key": f"old{i}"})
    alice = await subscribe(replica, "alice")
    bob = await subscribe(replica, "bob")
    init = alice.init
    assert init["type"] == "init" and init["instance"] == "r1" and init["user"] == "alice"
    assert len(init["items"]) == 20
    assert [item["data"]["key"] for item in init["items"]] == [f"old{i}" for i in range(5, 25)]
    assert init["items"][0]["type"] == "notification" and init["items"][0]["origin"] == "r1"
    assert init["last_id"] == init["items"][-1]["id"]

    status, body = await apublish(replica.url, "alice", {"key": "live", "sent_ts": 123.25, "nested": {"a": [1]}})
    assert status == 201
    await apublish(replica.url, None, {"key": "everyone"})
    await alice.wait_for(lambda s: len(s.notifications) == 2, 5, "two frames for alice")
    await bob.wait_for(lambda s: len(s.notifications) == 1, 5, "the broadcast for bob")
    live = alice.notifications[0]
    assert live == {"type": "notification", "id": body["id"], "user": "alice", "origin": "r1",
                    "data": {"key": "live", "sent_ts": 123.25, "nested": {"a": [1]}}}
    assert alice.notifications[1]["user"] is None and bob.notifications[0]["data"] == {"key": "everyone"}
    metrics = replica.metrics()
    assert metrics["sockets"] == 2 and metrics["users"] == 2 and metrics["delivered"] == 3
    await asyncio.sleep(0.3)
    assert len(bob.notifications) == 1  # alice's notification never reached bob
    await alice.close()
    await bob.close()


async def test_resume_replays_what_was_missed_exactly_once(replica):
    first = await subscribe(replica, "carol")
    for i in range(3):
        await apublish(replica.url, "carol", {"key": f"seen{i}"})
    await first.wait_for(lambda s: len(s.notifications) == 3, 5, "three live frames")
    last_seen = first.notifications[-1]["id"]
    await first.close()

    missed = []
    for i in range(30):
        user = None if i == 15 else "carol"  # one broadcast among them
        missed.append((await apublish(replica.url, user, {"key": f"missed{i}"}))[1]["id"])
    await apublish(replica.url, "dave", {"key": "not-carols"})

    second = await subscribe(replica, "carol")
    # The init frame already carried the last 20; the resume must send only the rest.
    in_init = ids(second.init["items"])
    assert in_init == missed[-20:]
    await second.send({"type": "resume", "after": last_seen})
    await second.wait_for(lambda s: len(s.notifications) == len(missed) - 20, 5, "the replay")
    # A live message during or after the replay arrives once, and a second resume
    # covering everything repeats nothing.
    live_id = (await apublish(replica.url, "carol", {"key": "after-resume"}))[1]["id"]
    await second.send({"type": "resume", "after": 0})
    everything = set(missed) | {live_id} | set(ids(first.notifications))
    await second.wait_for(lambda s: set(in_init) | set(ids(s.notifications)) == everything, 5, "the second replay")
    await asyncio.sleep(0.3)  # room for a duplicate to show up
    received = ids(second.notifications)
    replayed = [f["id"] for f in second.notifications if f.get("replay")]
    assert len(received) == len(set(received)), "duplicate frames"
    assert not set(in_init) & set(received), "frames already in the init frame were sent again"
    assert replayed[: len(missed) - 20] == missed[: len(missed) - 20]
    assert live_id not in replayed
    metrics = replica.metrics()
    assert metrics["replayed"] == len(replayed)
    await second.close()


async def test_malformed_frames_get_errors_and_the_socket_stays_up(replica):
    sub = await subscribe(replica, "erin")
    for bad in ["not json", "[1,2]", '{"type": "resume"}', '{"type": "resume", "after": -1}',
                '{"type": "resume", "after": "x"}', '{"type": "dance"}', "{" * 100000]:
        await sub.send(bad)
    await sub.wait_for(lambda s: sum(f["type"] == "error" for f in s.frames) == 7, 5, "seven error frames")
    await sub.send({"type": "ping"})
    await sub.wait_for(lambda s: any(f["type"] == "pong" for f in s.frames), 5, "pong")
    await apublish(replica.url, "erin", {"key": "still-here"})
    await sub.wait_for(lambda s: len(s.notifications) == 1, 5, "a live frame after the errors")
    assert sub.close_code is None
    await sub.close()
