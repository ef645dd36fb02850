"""The WebSocket connections of this replica, and the one way to deliver to them.

Every delivery path (the publisher's own replica, a broker message, a catch-up after a
broker reconnect) calls `Hub.deliver`, which drops ids this replica has already
delivered. That is what lets catch-up overlap live delivery without duplicates.

Each connection has its own bounded queue and writer task, so one slow client never
stalls the fan-out to the others; a client whose queue overflows is closed (1013) and
can reconnect and resume.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket

from sut.models import Notification

log = logging.getLogger("sut.hub")

CLOSE_GOING_AWAY = 1001
CLOSE_TRY_AGAIN_LATER = 1013


class RecentIds:
    """A set that remembers only the last `capacity` ids added (FIFO eviction)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._order: deque[int] = deque()
        self._ids: set[int] = set()

    def __contains__(self, item: int) -> bool:
        return item in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, item: int) -> bool:
        """True if the id was new."""
        if item in self._ids:
            return False
        self._ids.add(item)
        self._order.append(item)
        if len(self._order) > self.capacity:
            self._ids.discard(self._order.popleft())
        return True


@dataclass(frozen=True)
class Outgoing:
    notification: Notification
    replay: bool = False
    # False only for the `dup-catchup` defect: send even if this socket had it already.
    dedupe: bool = True


@dataclass(eq=False)
class Client:
    """One accepted WebSocket of one user."""

    user: str
    websocket: WebSocket
    queue_limit: int = 10_000
    # Ids sent on this connection: a resume replay must not repeat a live frame that
    # raced with its query, and vice versa. Bounded per socket (thousands of sockets
    # per replica); a resume normally follows the connect, when few ids were sent.
    sent: RecentIds = field(default_factory=lambda: RecentIds(5_000))
    # The highest id when the init frame was built: older live frames are history for
    # this socket (it gets them by resume), not news.
    floor: int = 0
    closed: bool = False
    queue: asyncio.Queue[Outgoing] = field(init=False)
    _send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.queue_limit)

    async def send_json(self, body: dict[str, Any]) -> bool:
        """Send one frame unless the socket is closed; False if it could not be sent."""
        async with self._send_lock:
            if self.closed:
                return False
            try:
                await self.websocket.send_text(json.dumps(body, separators=(",", ":")))
                return True
            except Exception:  # the peer went away mid-send: the reader loop will notice
                self.closed = True
                return False

    async def put(self, item: Outgoing) -> bool:
        """Queue a frame, waiting while the queue is full; False once the socket closed
        (so a replay into a stuck socket cannot hold up shutdown)."""
        while not self.closed:
            try:
                await asyncio.wait_for(self.queue.put(item), 0.5)
                return True
            except asyncio.TimeoutError:
                continue
        return False

    async def close(self, code: int, reason: str = "") -> None:
        async with self._send_lock:
            if self.closed:
                return
            self.closed = True
            try:
                await self.websocket.close(code, reason)
            except Exception:  # already gone; closing is best effort
                pass


class Hub:
    def __init__(self, instance: str, *, recent_ids: int = 100_000, queue_limit: int = 10_000) -> None:
        self.instance = instance
        self.queue_limit = queue_limit
        self._by_user: dict[str, set[Client]] = {}
        self._clients: set[Client] = set()
        self._delivered = RecentIds(recent_ids)
        self.delivered = 0  # live frames sent (including catch-up)
        self.replayed = 0  # frames sent in answer to a resume
        self.slow_closed = 0
        self.draining = False
        self._closing: set[asyncio.Task] = set()  # strong references until they finish

    @property
    def sockets(self) -> int:
        return len(self._clients)

    @property
    def users(self) -> int:
        return len(self._by_user)

    def new_client(self, user: str, websocket: WebSocket) -> Client:
        return Client(user, websocket, self.queue_limit)

    def add(self, client: Client) -> None:
        self._clients.add(client)
        self._by_user.setdefault(client.user, set()).add(client)

    def remove(self, client: Client) -> None:
        self._clients.discard(client)
        peers = self._by_user.get(client.user)
        if peers is not None:
            peers.discard(client)
            if not peers:
                del self._by_user[client.user]

    def already_delivered(self, notification_id: int) -> bool:
        return notification_id in self._delivered

    def deliver(self, notification: Notification, *, dedupe: bool = True) -> bool:
        """Queue a live notification for its sockets here. False if it was a duplicate."""
        is_new = self._delivered.add(notification.id)
        if not is_new and dedupe:
            return False
        targets = self._clients if notification.user is None else self._by_user.get(notification.user, ())
        for client in list(targets):
            self.offer(client, Outgoing(notification, dedupe=dedupe))
        return True

    def offer(self, client: Client, item: Outgoing) -> None:
        if client.closed:
            return
        try:
            client.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.slow_closed += 1
            log.warning("closing slow client of %s: %d frames queued", client.user, client.queue.qsize())
            task = asyncio.get_running_loop().create_task(client.close(CLOSE_TRY_AGAIN_LATER, "too slow"))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def write(self, client: Client) -> None:
        """The client's writer task: send queued frames in order until it closes."""
        while not client.closed:
            item = await client.queue.get()
            note = item.notification
            if item.dedupe and (note.id in client.sent or (not item.replay and note.id <= client.floor)):
                continue
            client.sent.add(note.id)
            if not await client.send_json(note.frame(replay=item.replay)):
                return
            if item.replay:
                self.replayed += 1
            else:
                self.delivered += 1

    async def close_all(self, code: int, reason: str, timeout: float) -> None:
        """Close every socket (graceful shutdown); bounded, so a stuck peer cannot stall us."""
        clients = list(self._clients)
        if not clients:
            return
        done, pending = await asyncio.wait(
            [asyncio.ensure_future(c.close(code, reason)) for c in clients], timeout=timeout,
        )
        for task in pending:
            task.cancel()
        log.info("closed %d sockets with %d (%d did not finish in time)", len(done), code, len(pending))
