"""Fan-out with Redis pub/sub.

PUBLISH happens after the insert commits. If it fails (Redis down or unreachable from
this replica) the notification waits in an outbox (sut/brokers/outbox.py) and is
published when Redis is back: it is already stored and acknowledged, so it must still
reach the other replicas' sockets. Pub/sub keeps nothing for a subscriber that is not
connected, so whatever was published while this replica's subscription was down comes
from the catch-up from Postgres (sut/fanout.py). The subscription uses its own
connection with client-side retries off, because redis-py would otherwise reconnect
and resubscribe silently, and a drop must be seen to trigger that catch-up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from sut.brokers.base import MessageHandler, StateHandler, Subscription
from sut.brokers.outbox import Outbox
from sut.defects import Defects
from sut.models import Notification, parse_broker_payload

log = logging.getLogger("sut.brokers.redis")

CHANNEL = "gauntlet:notifications"
PUBLISH_TIMEOUT = 1.0
PING_INTERVAL = 1.0
# No reply of any kind (message or PONG) for this long means the connection is dead.
SILENCE_LIMIT = 3.0


def _client(url: str, retries: int) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url, socket_timeout=PUBLISH_TIMEOUT, socket_connect_timeout=1.0,
        retry=Retry(NoBackoff(), retries), health_check_interval=0,
    )


class RedisBroker:
    kind = "redis"
    transactional = False

    def __init__(self, redis_url: str, *, defects: Defects) -> None:
        self.redis_url = redis_url
        # One retry: the first command on a pooled connection that died with a Redis
        # restart fails once, and a fresh connection then works.
        self._publisher = _client(redis_url, retries=1)
        self._subscriber: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._handlers: list[MessageHandler] = []
        self.outbox = Outbox("redis", lambda payload: self._publisher.publish(CHANNEL, payload), PUBLISH_TIMEOUT)
        self.received = 0
        self.subscription = Subscription("redis", self._connect, self._serve, self._close, defects)

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
            log.debug("redis publisher close: %s", exc)

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

    def metrics(self) -> dict[str, Any]:
        return {
            "reconnects": self.subscription.reconnects, "received": self.received,
            "outbox": len(self.outbox), "outbox_dropped": self.outbox.dropped,
        }

    async def _connect(self) -> None:
        self._subscriber = _client(self.redis_url, retries=0)
        self._pubsub = self._subscriber.pubsub()
        await asyncio.wait_for(self._pubsub.subscribe(CHANNEL), 2.0)
        # Wait for the server's confirmation: only then are we really subscribed.
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            message = await self._pubsub.get_message(timeout=0.5)
            if message and message.get("type") == "subscribe":
                return
        raise ConnectionError("no subscribe confirmation from redis")

    async def _serve(self) -> None:
        last_heard = last_ping = time.monotonic()
        while True:
            message = await self._pubsub.get_message(timeout=PING_INTERVAL)
            now = time.monotonic()
            if message is not None:
                last_heard = now
                if message.get("type") == "message":
                    self._on_message(message.get("data"))
            if now - last_heard > SILENCE_LIMIT:
                raise ConnectionError(f"no reply from redis for {now - last_heard:.1f}s")
            if now - last_ping >= PING_INTERVAL:
                last_ping = now
                await asyncio.wait_for(self._pubsub.ping(), PUBLISH_TIMEOUT)

    async def _close(self) -> None:
        pubsub, subscriber = self._pubsub, self._subscriber
        self._pubsub = self._subscriber = None
        if pubsub is not None:
            await pubsub.aclose()
        if subscriber is not None:
            await subscriber.aclose()

    def _on_message(self, data: Any) -> None:
        try:
            message = parse_broker_payload(data)
        except ValueError as exc:
            log.warning("ignoring malformed redis message: %s", exc)
            return
        self.received += 1
        for handler in self._handlers:
            handler(message)
