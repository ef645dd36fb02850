"""The fan-out's catch-up bookkeeping, driven with an in-process database and broker.

The race that matters: a resumable broker reports a gap while a catch-up is already
reading. The ids the gap owes may have been committed after that read passed them, so
the catch-up must run again instead of settling the debt it started with.
"""

from __future__ import annotations

import asyncio

from sut.defects import Defects
from sut.fanout import Fanout
from sut.hub import Hub


class SlowDatabase:
    """Answers `since` with nothing, the first call only once it is released."""

    def __init__(self) -> None:
        self.start_max_id = 0
        self.calls: list[int] = []
        self.reading = asyncio.Event()
        self.release = asyncio.Event()

    async def since(self, after: int, limit: int) -> list:
        self.calls.append(after)
        if len(self.calls) == 1:
            self.reading.set()
            await self.release.wait()
        return []


class StreamBroker:
    """Connected, resumable (it has `on_gap`), and otherwise silent."""

    def on_message(self, handler) -> None: ...
    def on_state(self, handler) -> None: ...
    def on_gap(self, handler) -> None: ...

    def is_connected(self) -> bool:
        return True


async def test_a_gap_reported_during_a_catch_up_runs_the_catch_up_again():
    db = SlowDatabase()
    fanout = Fanout(Hub("r1"), db, StreamBroker(), Defects(), seed=1)
    await fanout.start()
    try:
        fanout.broker_state(True)
        fanout.broker_gap()
        await asyncio.wait_for(db.reading.wait(), 5)
        fanout.broker_gap()  # while the first catch-up is still reading
        db.release.set()
        for _ in range(100):
            if len(db.calls) >= 2 and fanout.catchups >= 2:
                break
            await asyncio.sleep(0.01)
        assert db.calls == [0, 0], "the gap reported meanwhile gets a catch-up of its own"
        assert fanout.catchups == 2
    finally:
        await fanout.stop()


async def test_one_gap_gets_exactly_one_catch_up():
    db = SlowDatabase()
    db.release.set()
    fanout = Fanout(Hub("r1"), db, StreamBroker(), Defects(), seed=1)
    await fanout.start()
    try:
        fanout.broker_state(True)
        fanout.broker_gap()
        for _ in range(100):
            if fanout.catchups:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # room for a needless second one
        assert db.calls == [0] and fanout.catchups == 1
    finally:
        await fanout.stop()


class RecordingHub(Hub):
    """A hub that remembers the order in which notifications reached it."""

    def __init__(self) -> None:
        super().__init__("r1")
        self.order: list[int] = []

    def deliver(self, notification, *, dedupe: bool = True) -> bool:
        self.order.append(notification.id)
        return super().deliver(notification, dedupe=dedupe)


async def _fan_out(defects: Defects, count: int) -> list[int]:
    from sut.defects import REORDER_HOLD_S
    from sut.models import Notification

    hub = RecordingHub()
    fanout = Fanout(hub, SlowDatabase(), StreamBroker(), defects, seed=1)
    await fanout.start()
    try:
        for i in range(1, count + 1):
            fanout.receive(Notification(i, None, "r2", {}))
        deadline = asyncio.get_running_loop().time() + REORDER_HOLD_S + 5
        while len(hub.order) < count and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        return hub.order
    finally:
        await fanout.stop()


async def test_fan_out_keeps_the_broker_order():
    assert await _fan_out(Defects(), 45) == list(range(1, 46))


async def test_reorder_defect_holds_every_twentieth_message_back():
    from sut.defects import REORDER_EVERY

    got = await _fan_out(Defects(reorder_fanout=True), 45)
    held = [REORDER_EVERY, 2 * REORDER_EVERY]
    assert sorted(got) == list(range(1, 46)), "nothing lost"
    assert got[-2:] == held and got[:-2] == [i for i in range(1, 46) if i not in held]
