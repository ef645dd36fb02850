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
import time
from typing import Any

import redis.asyncio as aioredis

from sut.brokers.redis_common import SEND_TIMEOUT, OutboxRedisBroker, redis_client
from sut.defects import Defects

CHANNEL = "gauntlet:notifications"
PING_INTERVAL = 1.0
# No reply of any kind (message or PONG) for this long means the connection is dead.
SILENCE_LIMIT = 3.0


class RedisBroker(OutboxRedisBroker):
    kind = "redis"

    def __init__(self, redis_url: str, *, defects: Defects) -> None:
        self._subscriber: aioredis.Redis | None = None
        self._pubsub: Any = None
        super().__init__(redis_url, defects=defects)

    async def _send(self, payload: str) -> None:
        await self._publisher.publish(CHANNEL, payload)

    def metrics(self) -> dict[str, Any]:
        return self.outbox_metrics()

    async def _connect(self) -> None:
        self._subscriber = redis_client(self.redis_url, retries=0)
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
                    self._dispatch(message.get("data"))
            if now - last_heard > SILENCE_LIMIT:
                raise ConnectionError(f"no reply from redis for {now - last_heard:.1f}s")
            if now - last_ping >= PING_INTERVAL:
                last_ping = now
                await asyncio.wait_for(self._pubsub.ping(), SEND_TIMEOUT)

    async def _close(self) -> None:
        pubsub, subscriber = self._pubsub, self._subscriber
        self._pubsub = self._subscriber = None
        if pubsub is not None:
            await pubsub.aclose()
        if subscriber is not None:
            await subscriber.aclose()
