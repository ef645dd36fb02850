"""Fan-out with a Redis stream: a durable, bounded log that every replica reads.

Publishing appends the stored notification with `XADD ... MAXLEN ~ N` after the insert
commits (through the same outbox as pub/sub while Redis is unreachable). Each replica
reads with `XREAD BLOCK` from the id of the last entry it read, and after any drop (its
own connection cut, Redis restarted from its append-only file) it reads on from that
id: what was appended meanwhile is still in the stream. That is the difference from
pub/sub, which keeps nothing for an absent subscriber and needs the catch-up from
Postgres after every drop; here the catch-up only runs on a gap.

A gap is a position the stream can no longer continue from: it was trimmed past the
position (more than N entries were appended while this replica was away or behind),
or Redis lost entries (the stream is shorter than the position, or gone). The broker
then reports it (`Resumable.on_gap`) before announcing the reconnect, and the fan-out
catches up from Postgres. The trim test is conservative: when the oldest entry left is
newer than the position and anything was trimmed, it is a gap, even though the trimmed
entries might all have been read already; a needless catch-up costs one query, the
hub drops what it delivered already.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from sut.brokers.base import GapHandler
from sut.brokers.redis_common import OutboxRedisBroker, redis_client
from sut.defects import Defects


STREAM = "gauntlet:notifications:stream"
FIELD = "n"
CONNECT_TIMEOUT = 2.0
# XREAD blocks this long when there is nothing new, so every read is also a liveness
# round trip; a read that does not come back within READ_SLACK more means the
# connection is dead (a partition that drops traffic shows only this way).
READ_BLOCK_MS = 1000
READ_SLACK = 2.0
READ_COUNT = 500
DEFAULT_MAXLEN = 50_000


def entry_id(text: str | bytes) -> tuple[int, int]:
    """'1763900000123-4' -> (1763900000123, 4), so ids compare in stream order."""
    raw = text.decode() if isinstance(text, bytes) else text
    ms, _, seq = raw.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True)
class StreamInfo:
    """What XINFO STREAM says, as far as resuming from a position needs."""

    exists: bool
    length: int = 0
    entries_added: int = 0
    first_id: str | None = None
    last_id: str = "0-0"

    def gap_after(self, position: str) -> str | None:
        """Why reading on after `position` would miss entries; None when it would not."""
        here = entry_id(position)
        if here == (0, 0):
            return None
        if not self.exists:
            return "the stream is gone (redis lost its data)"
        if entry_id(self.last_id) < here:
            return f"the stream ends at {self.last_id}, before {position} (redis lost entries)"
        trimmed = self.entries_added > self.length
        if trimmed and self.first_id is not None and entry_id(self.first_id) > here:
            return f"the stream was trimmed past {position} (oldest entry now {self.first_id})"
        return None


async def stream_info(client: aioredis.Redis) -> StreamInfo:
    try:
        raw = await client.xinfo_stream(STREAM)
    except ResponseError as exc:
        if "no such key" in str(exc).lower():
            return StreamInfo(exists=False)
        raise
    first = raw.get("first-entry")
    return StreamInfo(
        exists=True, length=int(raw.get("length", 0)), entries_added=int(raw.get("entries-added", 0)),
        first_id=_text(first[0]) if first else None, last_id=_text(raw.get("last-generated-id", "0-0")),
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStreamsBroker(OutboxRedisBroker):
    kind = "redis-streams"

    def __init__(self, redis_url: str, *, maxlen: int = DEFAULT_MAXLEN, defects: Defects) -> None:
        self.maxlen = maxlen
        self._reader: aioredis.Redis | None = None
        # Id of the last entry read; None until the first connect fixes where to start.
        self.position: str | None = None
        self._gap_handlers: list[GapHandler] = []
        self.gaps = 0
        self.resumes = 0
        super().__init__(redis_url, defects=defects)

    def on_gap(self, handler: GapHandler) -> None:
        self._gap_handlers.append(handler)

    async def _send(self, payload: str) -> None:
        await self._publisher.xadd(STREAM, {FIELD: payload}, maxlen=self.maxlen, approximate=True)

    def metrics(self) -> dict[str, Any]:
        return {**self.outbox_metrics(), "resumes": self.resumes, "gaps": self.gaps,
                "position": self.position, "maxlen": self.maxlen}

    async def _connect(self) -> None:
        self._reader = redis_client(self.redis_url, retries=0, timeout=READ_BLOCK_MS / 1000 + READ_SLACK)
        info = await asyncio.wait_for(stream_info(self._reader), CONNECT_TIMEOUT)
        if self.position is None:
            # Start at the end: anything older is history, which the first catch-up
            # from Postgres and the sockets' own resume cover.
            self.position = info.last_id
            return
        reason = info.gap_after(self.position)
        if reason is None:
            self.resumes += 1
            self.log.info("resuming the stream after %s", self.position)
            return
        if entry_id(info.last_id) < entry_id(self.position):
            self.position = info.last_id  # new entries get ids after the stream's end, not ours
        self._report_gap(reason)

    async def _serve(self) -> None:
        while True:
            before = self.position
            reply = await asyncio.wait_for(
                self._reader.xread({STREAM: self.position}, count=READ_COUNT, block=READ_BLOCK_MS),
                READ_BLOCK_MS / 1000 + READ_SLACK)
            entries = reply[0][1] if reply else []
            for raw_id, fields in entries:
                self.position = _text(raw_id)
                self._on_entry(fields)
            if len(entries) == READ_COUNT:
                # A full batch: this replica is behind, and trimming may have passed it.
                info = await asyncio.wait_for(stream_info(self._reader), CONNECT_TIMEOUT)
                reason = info.gap_after(before)
                if reason is not None:
                    self._report_gap(reason)

    async def _close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            await reader.aclose()

    def _report_gap(self, reason: str) -> None:
        self.gaps += 1
        self.log.warning("cannot resume the stream without a gap: %s; catching up from postgres", reason)
        for handler in self._gap_handlers:
            handler()

    def _on_entry(self, fields: dict[Any, Any]) -> None:
        self._dispatch(fields.get(FIELD.encode(), fields.get(FIELD)))
