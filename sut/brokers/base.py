"""The broker seam, and the reconnect loop the networked brokers share."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

import asyncpg

from sut.backoff import Backoff
from sut.defects import Defects
from sut.models import Notification, NotificationRef

MessageHandler = Callable[[Notification | NotificationRef], None]
# Called with True when the broker (re)connected and is subscribed, False on a drop.
StateHandler = Callable[[bool], None]
# Called when a resumable broker finds it cannot resume without missing messages.
GapHandler = Callable[[], None]


class Broker(Protocol):
    kind: str
    # True: `publish` runs inside the insert's transaction and gets its connection.
    # False: `publish` runs after commit with tx=None.
    transactional: bool

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, notification: Notification, tx: asyncpg.Connection | None) -> None:
        """Fan out a stored notification. Non-transactional brokers never raise:
        a notification is acknowledged once it is stored."""

    def on_message(self, handler: MessageHandler) -> None: ...

    def on_state(self, handler: StateHandler) -> None: ...

    def is_connected(self) -> bool: ...

    async def ping(self, timeout: float) -> bool:
        """A cheap round trip that proves the subscription side works; never hangs."""

    def metrics(self) -> dict[str, Any]: ...


@runtime_checkable
class Resumable(Protocol):
    """A broker that keeps what was published while this replica was away (a log
    read from a position, not a live feed): after a drop it resumes where it stopped,
    so the fan-out needs no catch-up from Postgres. When it cannot resume without a
    hole (the log was trimmed past its position, or the server lost entries) it calls
    the gap handler before announcing the reconnect, and the catch-up runs after all."""

    def on_gap(self, handler: GapHandler) -> None: ...


class Subscription:
    """Connect, serve until the connection is lost, reconnect with backoff, forever.

    `connect` must leave the broker subscribed (so a catch-up started on the
    connected event cannot miss a message published after it); `serve` returns or
    raises when the connection is lost; `close` releases what `connect` opened.
    """

    def __init__(
        self,
        name: str,
        connect: Callable[[], Awaitable[None]],
        serve: Callable[[], Awaitable[None]],
        close: Callable[[], Awaitable[None]],
        defects: Defects,
    ) -> None:
        self.name = name
        self._connect, self._serve, self._close = connect, serve, close
        self.defects = defects
        self.connected = False
        self.reconnects = 0
        self._handlers: list[StateHandler] = []
        self._task: asyncio.Task | None = None
        self.log = logging.getLogger(f"sut.brokers.{name.replace('-', '_')}")

    def on_state(self, handler: StateHandler) -> None:
        self._handlers.append(handler)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.name}-subscription")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._close_quietly()
        self.connected = False

    def _notify(self, connected: bool) -> None:
        self.connected = connected
        for handler in self._handlers:
            handler(connected)

    async def _run(self) -> None:
        backoff = Backoff()
        ever_connected = False
        while True:
            try:
                await self._connect()
            except Exception as exc:  # any failure to connect is retried the same way
                await self._close_quietly()
                delay = backoff.next_delay()
                self.log.warning("%s broker connect failed (%s); retrying in %.2fs", self.name, exc, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            if ever_connected:
                self.reconnects += 1
            self.log.info("%s broker %s", self.name, "reconnected" if ever_connected else "connected")
            ever_connected = True
            self._notify(True)
            try:
                await self._serve()
                reason = "connection closed"
            except Exception as exc:  # a lost connection surfaces as many exception types
                reason = f"{type(exc).__name__}: {exc}"
            self._notify(False)
            await self._close_quietly()
            self.log.warning("%s broker connection lost (%s)", self.name, reason)
            if self.defects.no_broker_reconnect:  # defect: stay down after the first drop
                self.log.warning("not reconnecting (defect no-broker-reconnect)")
                return
            await asyncio.sleep(backoff.next_delay())

    async def _close_quietly(self) -> None:
        try:
            await asyncio.wait_for(self._close(), 2.0)
        except Exception as exc:  # closing a dead connection may fail in many ways; it is gone either way
            self.log.debug("%s broker close: %s", self.name, exc)
