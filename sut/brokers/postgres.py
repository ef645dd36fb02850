"""Fan-out with Postgres LISTEN/NOTIFY.

The NOTIFY is issued inside the insert's transaction, so Postgres delivers it exactly
when the row commits (never for a rolled-back insert, never before the row is
readable), and in commit order. Listening happens on a dedicated connection outside
the pool: a pooled connection is handed to other work and would lose the LISTEN.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg

from sut.brokers.base import MessageHandler, StateHandler, Subscription
from sut.defects import Defects
from sut.models import Notification, parse_broker_payload, ref_payload

log = logging.getLogger("sut.brokers.postgres")

CHANNEL = "gauntlet_notifications"
# Postgres rejects NOTIFY payloads of 8000 bytes or more; bigger notifications travel
# as a reference and each receiver reads the row.
MAX_NOTIFY_BYTES = 7999
HEALTH_INTERVAL = 1.0
HEALTH_TIMEOUT = 2.0


class PostgresBroker:
    kind = "postgres"
    transactional = True

    def __init__(self, database_url: str, *, defects: Defects) -> None:
        self.database_url = database_url
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        # One query at a time on the listener connection (health loop and /api/ready).
        self._query_lock = asyncio.Lock()
        self._handlers: list[MessageHandler] = []
        self.received = 0
        self.refs_sent = 0
        self.subscription = Subscription("postgres", self._connect, self._serve, self._close, defects)

    async def start(self) -> None:
        self.subscription.start()

    async def stop(self) -> None:
        await self.subscription.stop()

    def on_message(self, handler: MessageHandler) -> None:
        self._handlers.append(handler)

    def on_state(self, handler: StateHandler) -> None:
        self.subscription.on_state(handler)

    def is_connected(self) -> bool:
        return self.subscription.connected and self._conn is not None and not self._conn.is_closed()

    async def publish(self, notification: Notification, tx: asyncpg.Connection | None) -> None:
        assert tx is not None, "the postgres broker publishes inside the insert's transaction"
        payload = notification.broker_payload()
        if len(payload.encode()) > MAX_NOTIFY_BYTES:
            payload = ref_payload(notification.id)
            self.refs_sent += 1
        await tx.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)

    async def ping(self, timeout: float) -> bool:
        if not self.is_connected():
            return False
        try:
            async with asyncio.timeout(timeout), self._query_lock:
                await self._conn.fetchval("SELECT 1")
            return True
        except Exception:  # any failure means "not working right now"
            return False

    def metrics(self) -> dict[str, Any]:
        return {"reconnects": self.subscription.reconnects, "received": self.received, "refs_sent": self.refs_sent}

    async def _connect(self) -> None:
        self._lost = asyncio.Event()
        conn = await asyncpg.connect(self.database_url, timeout=2.0, command_timeout=HEALTH_TIMEOUT)
        self._conn = conn
        conn.add_termination_listener(lambda _conn: self._lost.set())
        await asyncio.wait_for(conn.add_listener(CHANNEL, self._on_notify), HEALTH_TIMEOUT)

    async def _serve(self) -> None:
        # A killed server closes the socket (termination listener); a partition only
        # shows as a query that does not come back, hence the periodic round trip.
        while True:
            try:
                await asyncio.wait_for(self._lost.wait(), HEALTH_INTERVAL)
                return
            except asyncio.TimeoutError:
                pass
            async with asyncio.timeout(HEALTH_TIMEOUT), self._query_lock:
                await self._conn.fetchval("SELECT 1")

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            # terminate, not close: close() waits for the server, which may be gone.
            conn.terminate()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = parse_broker_payload(payload)
        except ValueError as exc:
            log.warning("ignoring malformed notification payload: %s", exc)
            return
        self.received += 1
        for handler in self._handlers:
            handler(message)
