"""What the two Redis brokers (pub/sub and streams) share: how they publish (after the
commit, through an outbox while Redis is unreachable), how they watch their reading
connection (one `Subscription` with the shared reconnect loop), and how a received
payload reaches the fan-out. Each broker brings its own send, connect, serve, close."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from sut.brokers.base import MessageHandler, StateHandler, Subscription
from sut.brokers.outbox import Outbox
from sut.defects import Defects
from sut.models import Notification, parse_broker_payload

SEND_TIMEOUT = 1.0


def redis_client(url: str, retries: int, timeout: float = SEND_TIMEOUT) -> aioredis.Redis:
    # Client-side retries stay explicit: redis-py would otherwise reconnect (and
    # resubscribe) silently, and a drop must be seen to trigger a catch-up or resume.
    return aioredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=1.0,
                                   retry=Retry(NoBackoff(), retries), health_check_interval=0)


class OutboxRedisBroker:
    """Base of the Redis brokers. Subclasses set `kind` and implement `_send(payload)`,
    `_connect()`, `_serve()`, `_close()` and `metrics()`."""

    kind = "redis"
    transactional = False

    def __init__(self, redis_url: str, *, defects: Defects) -> None:
        self.redis_url = redis_url
        self.log = logging.getLogger(f"sut.brokers.{self.kind.replace('-', '_')}")
        # One retry: the first command on a pooled connection that died with a Redis
        # restart fails once, and a fresh connection then works.
        self._publisher = redis_client(redis_url, retries=1)
        self._handlers: list[MessageHandler] = []
        self.outbox = Outbox(self.kind, self._send, SEND_TIMEOUT)
        self.received = 0
        self.subscription = Subscription(self.kind, self._connect, self._serve, self._close, defects)

    async def _send(self, payload: str) -> None:
        raise NotImplementedError

    async def _connect(self) -> None:
        raise NotImplementedError

    async def _serve(self) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        self.subscription.on_state(self._on_state)
        self.subscription.start()
        self.outbox.start()

    async def stop(self) -> None:
        await self.outbox.stop()
        await self.subscription.stop()
        try:
            await asyncio.wait_for(self._publisher.aclose(), 2.0)
        except Exception as exc:  # closing a dead connection; it is gone either way
            self.log.debug("redis publisher close: %s", exc)

    def _on_state(self, connected: bool) -> None:
        if connected:  # Redis answers again: send what the outbox holds now
            self.outbox.retry_now()

    def on_message(self, handler: MessageHandler) -> None:
        self._handlers.append(handler)

    def on_state(self, handler: StateHandler) -> None:
        self.subscription.on_state(handler)

    def is_connected(self) -> bool:
        return self.subscription.connected

    async def publish(self, notification: Notification, tx: asyncpg.Connection | None) -> None:
        await self.outbox.send(notification.broker_payload())

    async def ping(self, timeout: float) -> bool:
        if not self.is_connected():
            return False
        try:
            return bool(await asyncio.wait_for(self._publisher.ping(), timeout))
        except Exception:  # any failure means "not working right now"
            return False

    def outbox_metrics(self) -> dict[str, Any]:
        return {"reconnects": self.subscription.reconnects, "received": self.received,
                "outbox": len(self.outbox), "outbox_dropped": self.outbox.dropped}

    def _dispatch(self, data: Any) -> None:
        try:
            message = parse_broker_payload(data)
        except ValueError as exc:
            self.log.warning("ignoring a malformed %s message: %s", self.kind, exc)
            return
        self.received += 1
        for handler in self._handlers:
            handler(message)
