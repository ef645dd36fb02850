"""ToxicStub: one toxic running on one link (one connection, one direction)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from typing import Any, Protocol

from .stream import Chunk
from .toxics import NoopToxic, StatefulToxic
from .wrapper import ToxicWrapper

log = logging.getLogger("chaos.proxy.stub")

_NOOP = NoopToxic()
MAX_SLEEP = 10.0**8  # seconds, about three years
TIMER_SLACK = 0.0005  # rounds a sub-millisecond remainder up, not down to "now"


class StubConnection(Protocol):
    """What a toxic may do to the whole connection (connection.py)."""

    def reset(self, reason: str) -> None: ...

    def close(self, reason: str) -> None: ...


class StubLink(Protocol):
    """The link a stub runs on (link.py, which builds on this module), as the stub sees it."""

    @property
    def connection(self) -> StubConnection: ...

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    def forward(self, stub: ToxicStub, chunk: Chunk | None) -> None: ...

    def enqueued(self, size: int) -> None: ...

    def dequeued(self, size: int) -> None: ...


class ToxicStub:
    """Input queue, output and per-connection state of a toxic on one link.

    The toxic's `pipe` runs as a task on the stub; interrupting the toxic is cancelling
    that task, so every wait is interruptible. The queue belongs to the stub, not the
    task, so what is queued survives an interruption and the link hands it on.
    """

    __slots__ = ("link", "wrapper", "state", "rng", "applies", "closed", "_queue", "_waiter", "_task")

    def __init__(self, link: StubLink, wrapper: ToxicWrapper, rng: random.Random) -> None:
        self.link = link
        self.wrapper = wrapper
        self.rng = rng
        toxic = wrapper.toxic
        self.state: Any = toxic.new_state() if isinstance(toxic, StatefulToxic) else None
        self.applies = False
        self.closed = False  # end of stream has gone out of this stub
        self._queue: deque[Chunk | None] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.roll()

    def roll(self) -> None:
        """Decide whether the toxic applies to this connection (toxicity)."""
        self.applies = self.rng.random() < self.wrapper.toxicity

    # --- the toxic's side (the Stub protocol) ---

    async def read(self) -> Chunk | None:
        while not self._queue:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        # Taken off the queue only once the task runs again: a cancellation that lands
        # between wake-up and here leaves the chunk queued, not lost.
        chunk = self._queue.popleft()
        if chunk is not None:
            self.link.dequeued(len(chunk.data))
        return chunk

    def write(self, chunk: Chunk) -> None:
        if not self.closed:
            self.link.forward(self, chunk)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.link.forward(self, None)

    def reset(self) -> None:
        self.link.connection.reset(f"reset_peer toxic {self.wrapper.name}")

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        # Capped so an absurd attribute (a latency of 2**62 ms) waits "forever" instead
        # of overflowing the loop's timer.
        deadline = time.monotonic() + min(seconds, MAX_SLEEP)
        while (left := deadline - time.monotonic()) > 0:
            # uvloop's timers count whole milliseconds from a clock truncated to the
            # millisecond, so they can fire up to a millisecond early: a latency toxic
            # must never deliver before its time, so wait again for what is left.
            await asyncio.sleep(left + TIMER_SLACK)

    def now(self) -> float:
        return time.monotonic()

    # --- the link's side ---

    def push(self, chunk: Chunk | None) -> None:
        if self.closed:
            return  # the stream already ended here; nothing after it is delivered
        self._queue.append(chunk)
        if chunk is not None:
            self.link.enqueued(len(chunk.data))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def drain(self) -> list[Chunk | None]:
        """Everything still queued, oldest first, for the link to hand on."""
        items = list(self._queue)
        self._queue.clear()
        self.link.dequeued(sum(len(c.data) for c in items if c is not None))
        return items

    def start(self) -> None:
        self._task = self.link.loop.create_task(self._run())

    async def _run(self) -> None:
        toxic = self.wrapper.toxic if self.applies else _NOOP
        try:
            await toxic.pipe(self)
        except asyncio.CancelledError:
            raise  # interrupted: the link decides what happens to the queue
        except Exception:
            log.exception("toxic %s (%s) failed", self.wrapper.name, self.wrapper.type)
            self.link.connection.close(f"toxic {self.wrapper.name} failed")
            return
        self.close()  # pipe returned: the stream ends at this toxic

    async def interrupt(self) -> bool:
        """Stop the running toxic. False if the stream had already ended here."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        return not self.closed

    def cancel(self) -> None:
        """Stop without waiting; the connection is going away."""
        if self._task is not None:
            self._task.cancel()
