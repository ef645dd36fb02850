"""In-process fan-out only: correct on one replica, silently loses every notification
published on another replica. The negative control for cross-instance delivery."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from sut.brokers.base import MessageHandler, StateHandler
from sut.models import Notification


class MemoryBroker:
    kind = "memory"
    transactional = False

    def __init__(self) -> None:
        self._handlers: list[MessageHandler] = []
        self._state_handlers: list[StateHandler] = []

    async def start(self) -> None:
        for handler in self._state_handlers:
            handler(True)

    async def stop(self) -> None:
        pass

    async def publish(self, notification: Notification, tx: asyncpg.Connection | None) -> None:
        loop = asyncio.get_running_loop()
        for handler in self._handlers:
            loop.call_soon(handler, notification)

    def on_message(self, handler: MessageHandler) -> None:
        self._handlers.append(handler)

    def on_state(self, handler: StateHandler) -> None:
        self._state_handlers.append(handler)

    def is_connected(self) -> bool:
        return True

    async def ping(self, timeout: float) -> bool:
        return True

    def metrics(self) -> dict[str, Any]:
        return {"reconnects": 0}
