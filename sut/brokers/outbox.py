"""The publish side of the Redis brokers: send now, or keep it for when Redis is back.

A notification is acknowledged once it is stored in Postgres, so a failed send to
Redis (down, or unreachable from this replica) must not lose it: it waits here, in
publish order, and a background task sends it once Redis answers again. While
anything is waiting, new notifications queue behind it, which keeps the order and
avoids paying a send timeout per publish while Redis is known to be down.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from sut.backoff import Backoff

OUTBOX_LIMIT = 100_000

Send = Callable[[str], Awaitable[Any]]


class Outbox:
    def __init__(self, name: str, send: Send, timeout: float, limit: int = OUTBOX_LIMIT) -> None:
        self.name = name
        self._send = send
        self._timeout = timeout
        self._limit = limit
        self._queue: deque[str] = deque()
        self._wake = asyncio.Event()
        self._retry = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.dropped = 0  # oldest entries given up when the queue hit its limit
        self.log = logging.getLogger(f"sut.brokers.{name.replace('-', '_')}")

    def __len__(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._task = asyncio.create_task(self._drain(), name=f"{self.name}-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._queue:
            self.log.warning("stopping with %d notifications not yet sent to redis", len(self._queue))

    async def send(self, payload: str) -> None:
        """Send at once when nothing is waiting; otherwise (or on failure) queue it. Never raises."""
        if not self._queue:
            try:
                await asyncio.wait_for(self._send(payload), self._timeout)
                return
            except Exception as exc:  # any failure: keep it for later, the row is stored
                self.log.warning("send to redis failed (%s); queued for retry", type(exc).__name__)
        self._put(payload)

    def retry_now(self) -> None:
        """Redis answered again (the subscription reconnected): stop backing off and send
        what waits, instead of up to a backoff cap later."""
        self._retry.set()

    def _put(self, payload: str) -> None:
        if len(self._queue) >= self._limit:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(payload)
        self._wake.set()

    async def _drain(self) -> None:
        backoff = Backoff()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                try:
                    await asyncio.wait_for(self._send(self._queue[0]), self._timeout)
                except Exception:  # still down; wait and retry
                    self._retry.clear()
                    try:
                        await asyncio.wait_for(self._retry.wait(), backoff.next_delay())
                        backoff.reset()
                    except asyncio.TimeoutError:
                        pass
                    continue
                self._queue.popleft()
                backoff.reset()
            self.log.info("redis outbox drained")
