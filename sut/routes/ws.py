"""WebSocket `/ws?token=<user token>`: init frame, live notifications, resume.

Order on connect matters: the socket joins the hub before the history is read, so a
notification committed during the read is queued, not missed; the writer starts only
after the init frame, and drops queued frames that the init already carried.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from sut.auth import verify_user_token
from sut.db import DatabaseUnavailable
from sut.hub import CLOSE_GOING_AWAY, CLOSE_TRY_AGAIN_LATER, Client, Outgoing
from sut.replica import Replica

log = logging.getLogger("sut.ws")

CLOSE_BAD_TOKEN = 4401
INIT_ITEMS = 20
RESUME_PAGE = 1000
RESUME_MAX = 100_000  # frames per resume: a bound, not an expected size


async def websocket_endpoint(websocket: WebSocket) -> None:
    replica: Replica = websocket.app.state.replica
    # Accept before closing so the client sees the 4401 close code; a rejected
    # handshake only shows up as an HTTP 403.
    await websocket.accept()
    user = verify_user_token(replica.config.secret, websocket.query_params.get("token"), replica.config.defects)
    if user is None:
        await websocket.close(CLOSE_BAD_TOKEN, "invalid or missing token")
        return
    if replica.hub.draining:
        await websocket.close(CLOSE_GOING_AWAY, "server shutting down")
        return
    hub = replica.hub
    client = hub.new_client(user, websocket)
    hub.add(client)
    writer: asyncio.Task | None = None
    try:
        try:
            last_id = await replica.db.max_id()  # before the items: see _init_frame
            items = await replica.db.recent(user, INIT_ITEMS)
        except DatabaseUnavailable:
            await client.close(CLOSE_TRY_AGAIN_LATER, "database unavailable")
            return
        await client.send_json(_init_frame(replica, user, items, last_id))
        for notification in items:
            client.sent.add(notification.id)
        client.floor = last_id
        writer = asyncio.create_task(hub.write(client), name=f"ws-writer-{user}")
        await _read_loop(replica, client)
    finally:
        hub.remove(client)
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer


def _init_frame(replica: Replica, user: str, items: list, last_id: int) -> dict[str, Any]:
    # last_id is read before the items, so every notification of this user with an
    # id <= last_id is either in `items` or older than all of them; live frames with
    # such ids are history for this socket (the hub skips them) and come by resume.
    return {
        "type": "init",
        "instance": replica.config.instance,
        "user": user,
        "items": [n.frame() for n in items],
        "last_id": last_id,
    }


async def _read_loop(replica: Replica, client: Client) -> None:
    while not client.closed:
        try:
            message = await client.websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None and message.get("bytes") is not None:
            text = message["bytes"].decode("utf-8", "replace")
        await _handle_frame(replica, client, text or "")


async def _handle_frame(replica: Replica, client: Client, text: str) -> None:
    """Malformed frames get an error frame; the connection stays up."""
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        await client.send_json({"type": "error", "error": "frame is not valid JSON"})
        return
    if not isinstance(frame, dict):
        await client.send_json({"type": "error", "error": "frame must be a JSON object"})
        return
    kind = frame.get("type")
    if kind == "ping":
        await client.send_json({"type": "pong"})
    elif kind == "resume":
        after = frame.get("after")
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            await client.send_json({"type": "error", "error": "resume needs a non-negative integer 'after'"})
            return
        await _resume(replica, client, after)
    else:
        await client.send_json({"type": "error", "error": f"unknown frame type {kind!r}"})


async def _resume(replica: Replica, client: Client, after: int) -> None:
    """Queue the user's notifications and broadcasts with id > after as replay frames;
    the writer skips ids this socket has had already (a live frame may have raced)."""
    cursor, queued = after, 0
    while queued < RESUME_MAX:
        try:
            page = await replica.db.history(client.user, cursor, RESUME_PAGE)
        except DatabaseUnavailable:
            await client.send_json({"type": "error", "error": "history unavailable, resume again later"})
            return
        for notification in page:
            # Waits for a slow client rather than dropping replay frames.
            if not await client.put(Outgoing(notification, replay=True)):
                return
        queued += len(page)
        if len(page) < RESUME_PAGE:
            return
        cursor = page[-1].id


ROUTES = [WebSocketRoute("/ws", websocket_endpoint)]
