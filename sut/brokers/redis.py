"""Fan-out with Redis pub/sub.

PUBLISH happens after the insert commits. If it fails (Redis down or unreachable from
this replica) the notification waits in an outbox and is published when Redis is
back: it is already stored and acknowledged, so it must still reach the other
replicas' sockets. The subscription uses its own connection with client-side retries
off, because redis-py would otherwise reconnect and resubscribe silently, and a drop
must be seen to trigger the catch-up from Postgres.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from sut.backoff import Backoff
from sut.brokers.base import MessageHandler, StateHandler, Subscription
from sut.defects import Defects
from sut.models import Notification, parse_broker_payload

log = logging.getLogger("sut.brokers.redis")

CHANNEL = "gauntlet:notifications"
PUBLISH_TIMEOUT = 1.0
PING_INTERVAL = 1.0
# No reply of any kind (message or PONG) for this long means the connection is dead.
SILENCE_LIMIT = 3.0
OUTBOX_LIMIT = 100_000


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
        self._outbox: deque[str] = deque()
        self._outbox_wake = asyncio.Event()
        self._outbox_task: asyncio.Task | None = None
        self.received = 0
        self.outbox_dropped = 0
        self.subscription = Subscription("redis", self._connect, self._serve, self._close, defects)

    async def start(self) -> None:
        self.subscription.start()
        self._outbox_task = asyncio.create_task(self._drain_outbox(), name="redis-outbox")

    async def stop(self) -> None:
        if self._outbox_task is not None:
            self._outbox_task.cancel()
            await asyncio.gather(self._outbox_task, return_exceptions=True)
        if self._outbox:
            log.warning("stopping with %d notifications not yet published to redis", len(self._outbox))
        await self.subscription.stop()
        try:
            await asyncio.wait_for(self._publisher.aclose(), 2.0)
        except Exception as exc:  # closing a dead connection; it is gone either way
            log.debug("redis publisher close: %s", exc)

    def on_message(self, handler: MessageHandler) -> None:
        self._handlers.append(handler)

    def on_state(self, handler: StateHandler) -> None:
        self.subscription.on_state(handler)

    def is_connected(self) -> bool:
        return self.subscription.connected

    async def publish(self, notification: Notification, tx: asyncpg.Connection | None) -> None:
        payload = notification.broker_payload()
        # Keep order behind earlier failures, and don't pay a timeout per publish
        # while Redis is known to be down.
        if not self._outbox:
            try:
                await asyncio.wait_for(self._publisher.publish(CHANNEL, payload), PUBLISH_TIMEOUT)
                return
            except Exception as exc:  # any failure: keep it for later, the row is stored
                log.warning("publish to redis failed (%s); queued for retry", type(exc).__name__)
        self._queue(payload)

    def _queue(self, payload: str) -> None:
        if len(self._outbox) >= OUTBOX_LIMIT:
            self._outbox.popleft()
            self.outbox_dropped += 1
        self._outbox.append(payload)
        self._outbox_wake.set()

    async def _drain_outbox(self) -> None:
        backoff = Backoff()
        while True:
            await self._outbox_wake.wait()
            self._outbox_wake.clear()
            while self._outbox:
                try:
                    await asyncio.wait_for(self._publisher.publish(CHANNEL, self._outbox[0]), PUBLISH_TIMEOUT)
                except Exception:  # still down; wait and retry
                    await asyncio.sleep(backoff.next_delay())
                    continue
                self._outbox.popleft()
                backoff.reset()
            if not self._outbox:
                log.info("redis outbox drained")

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
            "outbox": len(self._outbox), "outbox_dropped": self.outbox_dropped,
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
