"""From broker to hub: resolve references, and catch up from Postgres after a drop.

A broker only moves messages; while this replica's broker connection is down,
whatever other replicas publish never arrives here. So after every (re)connect the
replica reads the notifications it may have missed from Postgres and delivers those
the hub has not delivered yet.

Where to start reading: the low watermark, the highest id received at least
`CATCHUP_MARGIN` seconds before the drop was noticed. Not simply the highest id
received: Redis messages from different publishing replicas arrive out of id order
(replica A commits 10, replica B commits 11, B's PUBLISH lands first), so having seen
11 does not prove 10 arrived. The margin also covers the time it takes to notice a
drop (a few seconds of failed health checks). Reading a bit too much is harmless: the
hub drops ids it has delivered already.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque

from sut.backoff import Backoff
from sut.brokers import Broker, Resumable
from sut.db import Database, DatabaseUnavailable
from sut.defects import DROP_FANOUT_RATE, DUP_CATCHUP_WINDOW, REORDER_EVERY, REORDER_HOLD_S, Defects
from sut.hub import Hub
from sut.models import Notification, NotificationRef

log = logging.getLogger("sut.fanout")

CATCHUP_MARGIN = 10.0
CATCHUP_PAGE = 1000
# Receipts older than this are folded into one number; must exceed CATCHUP_MARGIN.
RECEIPT_WINDOW = 60.0
REF_FETCH_DEADLINE = 15.0


class ReceiptLog:
    """Ids received from the broker with their arrival times: the low watermark."""

    def __init__(self, margin: float = CATCHUP_MARGIN, window: float = RECEIPT_WINDOW) -> None:
        assert window > margin
        self.margin = margin
        self.window = window
        self._recent: deque[tuple[float, int]] = deque()  # (monotonic time, id), arrival order
        self._settled = 0  # max id among receipts folded out of the window

    def record(self, notification_id: int, now: float) -> None:
        self._recent.append((now, notification_id))
        while self._recent and self._recent[0][0] < now - self.window:
            self._settled = max(self._settled, self._recent.popleft()[1])

    def low_watermark(self, now: float, floor: int | None) -> int | None:
        """Highest id received at least `margin` seconds before `now` (never below
        `floor`); None when nothing can be owed (no floor and nothing received)."""
        if floor is None and not self._recent and not self._settled:
            return None
        mark = max(floor or 0, self._settled)
        for at, notification_id in self._recent:
            if at > now - self.margin:
                break
            mark = max(mark, notification_id)
        return mark


class Fanout:
    def __init__(self, hub: Hub, db: Database, broker: Broker, defects: Defects, *, seed: int) -> None:
        self.hub = hub
        self.db = db
        self.broker = broker
        self.defects = defects
        self._rng = random.Random(seed)
        self._inbox: asyncio.Queue[Notification | NotificationRef] = asyncio.Queue()
        self.receipts = ReceiptLog()
        self._pending_from: int | None = None  # catch up from here (None: nothing owed)
        # Resumable broker: the watermark at the first drop since it last resumed, used on a gap.
        self._drop_mark: int | None = None
        # Bumped on every drop and every new debt, so a running catch-up knows whether
        # what it read can still be short (a gap reported meanwhile owes ids it may not have seen).
        self._debt_version = 0
        self._ever_connected = False
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self.catchup_messages = 0
        self.catchups = 0
        self.dropped_by_defect = 0
        self.held_by_defect = 0
        self._consumed = 0
        self.ref_failures = 0

    @property
    def resumable(self) -> bool:
        return isinstance(self.broker, Resumable)

    async def start(self) -> None:
        self.broker.on_message(self.receive)
        self.broker.on_state(self.broker_state)
        if self.resumable:
            self.broker.on_gap(self.broker_gap)
        self._tasks = [
            asyncio.create_task(self._consume(), name="fanout-consume"),
            asyncio.create_task(self._catch_up_loop(), name="fanout-catchup"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def receive(self, message: Notification | NotificationRef) -> None:
        """Broker callback; a queue keeps arrival order while references are fetched."""
        self._inbox.put_nowait(message)

    def broker_state(self, connected: bool) -> None:
        if connected:
            if not self._ever_connected:
                self._ever_connected = True
                # Sockets may have connected while the broker was still unreachable;
                # catch up from the first id this replica could have owed them.
                if self.db.start_max_id is not None:
                    self._owe_from(self.db.start_max_id)
            self._drop_mark = None  # resumed (a gap, if any, was reported before this)
            self._wake.set()
            return
        self._debt_version += 1
        watermark = self.receipts.low_watermark(time.monotonic(), self.db.start_max_id)
        if watermark is None:
            return
        if self.resumable:
            self._drop_mark = watermark if self._drop_mark is None else min(self._drop_mark, watermark)
            log.info("broker dropped; it resumes from its own position (catch-up from id %d only on a gap)",
                     watermark)
            return
        self._owe_from(watermark)
        log.info("broker dropped; will catch up from id %d", watermark)

    def broker_gap(self) -> None:
        """A resumable broker cannot continue without missing messages: catch up from
        the watermark noted at the drop (or the current one if it fell behind while
        connected)."""
        mark = self._drop_mark
        if mark is None:
            mark = self.receipts.low_watermark(time.monotonic(), self.db.start_max_id)
        if mark is not None:
            self._owe_from(mark)
            log.warning("broker reported a gap; will catch up from id %d", mark)
        self._wake.set()

    def _owe_from(self, after: int) -> None:
        self._pending_from = after if self._pending_from is None else min(self._pending_from, after)
        self._debt_version += 1

    async def _consume(self) -> None:
        while True:
            message = await self._inbox.get()
            if self.defects.drop_fanout_1pct and self._rng.random() < DROP_FANOUT_RATE:
                self.dropped_by_defect += 1  # defect: silently lose this one
                continue
            if isinstance(message, NotificationRef):
                notification = await self._fetch(message.id)
                if notification is None:
                    continue
            else:
                notification = message
            self._consumed += 1
            if self.defects.reorder_fanout and self._consumed % REORDER_EVERY == 0:
                # Defect: this one waits while the messages after it are delivered.
                self.held_by_defect += 1
                asyncio.get_running_loop().call_later(REORDER_HOLD_S, self._deliver, notification)
                continue
            self._deliver(notification)

    def _deliver(self, notification: Notification) -> None:
        self.hub.deliver(notification)
        self.receipts.record(notification.id, time.monotonic())

    async def _fetch(self, notification_id: int) -> Notification | None:
        """Read a referenced notification, retrying while Postgres is unavailable."""
        backoff = Backoff()
        deadline = time.monotonic() + REF_FETCH_DEADLINE
        while True:
            try:
                found = await self.db.notification(notification_id)
                if found is None:
                    log.warning("referenced notification %d does not exist", notification_id)
                return found
            except DatabaseUnavailable as exc:
                if time.monotonic() > deadline:
                    self.ref_failures += 1
                    log.error("giving up on notification %d: %s", notification_id, exc)
                    return None
                await asyncio.sleep(backoff.next_delay())

    async def _catch_up_loop(self) -> None:
        backoff = Backoff()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending_from is not None and self.broker.is_connected():
                if self.defects.no_catchup:  # defect: reconnect without catching up
                    log.warning("skipping catch-up from id %d (defect no-catchup)", self._pending_from)
                    self._pending_from = None
                    break
                after, version = self._pending_from, self._debt_version
                try:
                    delivered = await self._catch_up(after)
                except DatabaseUnavailable as exc:
                    delay = backoff.next_delay()
                    log.warning("catch-up from id %d failed (%s); retrying in %.1fs", after, exc, delay)
                    await asyncio.sleep(delay)
                    continue
                backoff.reset()
                self.catchups += 1
                self.catchup_messages += delivered
                log.info("caught up from id %d: %d notifications delivered", after, delivered)
                if version == self._debt_version:
                    self._pending_from = None

    async def _catch_up(self, after: int) -> int:
        dedupe = not self.defects.dup_catchup
        cursor = after if dedupe else max(0, after - DUP_CATCHUP_WINDOW)  # defect: resend a window
        delivered = 0
        while True:
            page = await self.db.since(cursor, CATCHUP_PAGE)
            for notification in page:
                if self.hub.deliver(notification, dedupe=dedupe):
                    delivered += 1
            if len(page) < CATCHUP_PAGE:
                return delivered
            cursor = page[-1].id
