"""Read-through Redis cache for items, which degrades to Postgres.

A cache must never make a request slower or fail it: every Redis call has a short
timeout, and after a failure Redis is skipped for a moment (a small circuit breaker)
so a dead Redis costs one timeout per second, not one per request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

log = logging.getLogger("sut.cache")

CACHE_TIMEOUT = 0.25
TTL_SECONDS = 300
OPEN_FOR = 1.0  # seconds Redis is skipped after a failure


class ItemCache:
    def __init__(self, redis_url: str | None) -> None:
        self._client = None if redis_url is None else aioredis.Redis.from_url(
            redis_url, socket_timeout=CACHE_TIMEOUT, socket_connect_timeout=CACHE_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
        self._skip_until = 0.0
        self.hits = 0
        self.misses = 0
        self.errors = 0

    @property
    def enabled(self) -> bool:
        return self._client is not None

    async def get(self, item_id: int) -> dict[str, Any] | None:
        raw = await self._call(lambda c: c.get(_key(item_id)))
        if raw is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(raw)

    async def put(self, item: dict[str, Any]) -> None:
        await self._call(lambda c: c.set(_key(item["id"]), json.dumps(item), ex=TTL_SECONDS))

    async def _call(self, command: Any) -> Any:
        if self._client is None or time.monotonic() < self._skip_until:
            return None
        try:
            return await asyncio.wait_for(command(self._client), CACHE_TIMEOUT)
        except Exception as exc:  # any Redis trouble: serve from the database instead
            self.errors += 1
            if time.monotonic() >= self._skip_until:
                log.warning("item cache unavailable (%s); using the database for %.0fs", type(exc).__name__, OPEN_FOR)
            self._skip_until = time.monotonic() + OPEN_FOR
            return None

    async def close(self) -> None:
        if self._client is not None:
            try:
                await asyncio.wait_for(self._client.aclose(), 2.0)
            except Exception as exc:  # closing a dead connection; it is gone either way
                log.debug("item cache close: %s", exc)

    def metrics(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "hits": self.hits, "misses": self.misses, "errors": self.errors}


def _key(item_id: int) -> str:
    return f"gauntlet:item:{item_id}"
