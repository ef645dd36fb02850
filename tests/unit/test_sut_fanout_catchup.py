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
