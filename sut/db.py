"""Postgres access: one asyncpg pool, the schema, and every query the replica runs.

Every public call is bounded by `timeout` and raises `DatabaseUnavailable` when
Postgres is down, slow or not yet reached, so a request fails fast with 503 instead of
hanging. The pool is created in the background with backoff: a replica starts (and
answers /api/health) before Postgres is reachable, which keeps a chaos restart of
Postgres from turning into a crash loop of replicas.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from sut.backoff import Backoff
from sut.models import Notification

log = logging.getLogger("sut.db")

# Advisory lock keys (arbitrary constants, unique to this app within the database).
SCHEMA_LOCK = 0x67_61_75_6E_01  # held while N replicas race to create the schema
PUBLISH_LOCK = 0x67_61_75_6E_02  # serialises notification inserts, see insert_notification

SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    id         bigserial PRIMARY KEY,
    user_id    text,
    origin     text NOT NULL,
    data       json NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS notifications_user_id ON notifications (user_id, id);
CREATE INDEX IF NOT EXISTS notifications_broadcast ON notifications (id) WHERE user_id IS NULL;
CREATE TABLE IF NOT EXISTS items (
    id          integer PRIMARY KEY,
    name        text NOT NULL,
    price_cents integer NOT NULL,
    description text NOT NULL
);
"""
# `data` is `json`, not `jsonb`: json keeps the publisher's text as sent, so the payload
# echoed on every path (live, history, replay) is the same document.

SEED_ITEMS = """
INSERT INTO items (id, name, price_cents, description)
SELECT g, 'item-' || g, 100 + (g * 37) % 10000, 'Reference item number ' || g
FROM generate_series(1, $1::integer) AS g
ON CONFLICT (id) DO NOTHING
"""

_COLUMNS = "id, user_id, origin, data"
HISTORY = f"""
SELECT {_COLUMNS} FROM (
    (SELECT {_COLUMNS} FROM notifications WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3)
    UNION ALL
    (SELECT {_COLUMNS} FROM notifications WHERE user_id IS NULL AND id > $2 ORDER BY id LIMIT $3)
) AS mine ORDER BY id LIMIT $3
"""
RECENT = f"""
SELECT {_COLUMNS} FROM (
    (SELECT {_COLUMNS} FROM notifications WHERE user_id = $1 ORDER BY id DESC LIMIT $2)
    UNION ALL
    (SELECT {_COLUMNS} FROM notifications WHERE user_id IS NULL ORDER BY id DESC LIMIT $2)
) AS mine ORDER BY id DESC LIMIT $2
"""

# What a lost or refused connection looks like from asyncpg; anything else is a bug.
# InternalClientError is asyncpg's protocol state machine refusing a step on a
# connection whose server vanished mid-operation ("cannot switch to state ...; another
# operation is in progress", "not connected", the "failed" state): the first request
# that meets a pooled connection after Postgres was killed sees it. The pool discards
# that connection on release, so it is unavailability, not a bug of ours.
CONNECTION_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.CannotConnectNowError,
    asyncpg.QueryCanceledError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
)

# Runs inside the insert's transaction, before commit: (notification, connection).
InTransaction = Callable[[Notification, asyncpg.Connection], Awaitable[None]]


class DatabaseUnavailable(Exception):
    """Postgres cannot serve this call right now (down, slow, or not yet connected)."""


def _row(row: asyncpg.Record) -> Notification:
    return Notification(row["id"], row["user_id"], row["origin"], json.loads(row["data"]))


class Database:
    def __init__(self, url: str, *, pool_size: int, timeout: float, items: int) -> None:
        self.url = url
        self.pool_size = pool_size
        self.timeout = timeout
        self.items = items
        self.pool: asyncpg.Pool | None = None
        self.connected = False
        self.reconnects = 0
        # Highest notification id when this replica first reached the database: the
        # floor for catch-up (nothing older can be owed to a socket of this replica).
        self.start_max_id: int | None = None
        self.schema_ready = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="db-supervisor")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.pool is not None:
            try:
                await asyncio.wait_for(self.pool.close(), 3.0)
            except (asyncio.TimeoutError, *CONNECTION_ERRORS):
                self.pool.terminate()
        self.connected = False

    async def _supervise(self) -> None:
        """Create the pool and schema (with backoff), then watch the connection."""
        backoff = Backoff()
        while self.pool is None:
            try:
                # min_size=0: asyncpg would otherwise log a traceback each time it
                # fails to refill the floor while Postgres is down.
                self.pool = await asyncpg.create_pool(
                    self.url, min_size=0, max_size=self.pool_size, timeout=1.0,
                    command_timeout=self.timeout, max_inactive_connection_lifetime=60.0,
                )
            except CONNECTION_ERRORS + (asyncpg.PostgresError,) as exc:
                delay = backoff.next_delay()
                log.warning("database not reachable (%s); retrying in %.1fs", _brief(exc), delay)
                await asyncio.sleep(delay)
        backoff.reset()
        while not self.schema_ready.is_set():
            try:
                await self._create_schema()
            except (DatabaseUnavailable, *CONNECTION_ERRORS) as exc:
                delay = backoff.next_delay()
                log.warning("schema setup failed (%s); retrying in %.1fs", _brief(exc), delay)
                await asyncio.sleep(delay)
        self.connected = True
        log.info("database ready (notifications up to id %s)", self.start_max_id)
        # asyncpg replaces dead pool connections on acquire by itself; this loop only
        # keeps the state in /api/metrics current while there is no traffic.
        while True:
            await asyncio.sleep(1.0)
            await self.ping(1.0)

    def _mark(self, alive: bool) -> None:
        """Record the outcome of a database call; counts recoveries for /api/metrics."""
        if alive == self.connected or not self.schema_ready.is_set():
            return
        if alive:
            self.reconnects += 1
            log.info("database reachable again")
        else:
            log.warning("database unreachable")
        self.connected = alive

    async def _create_schema(self) -> None:
        async with self._conn(30.0) as conn, conn.transaction():
            # Several replicas start at once; CREATE TABLE IF NOT EXISTS is not safe
            # against itself (both may try to insert the same catalog row), so take
            # a lock first. It is released at commit.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
            await conn.execute(SCHEMA)
            await conn.execute(SEED_ITEMS, self.items)
            self.start_max_id = await conn.fetchval("SELECT coalesce(max(id), 0) FROM notifications")
        self.schema_ready.set()

    @asynccontextmanager
    async def _conn(self, timeout: float | None = None) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; the whole block (acquire and statements) is bounded."""
        if self.pool is None:
            raise DatabaseUnavailable("not connected yet")
        try:
            async with asyncio.timeout(timeout or self.timeout):
                async with self.pool.acquire() as conn:
                    yield conn
        except CONNECTION_ERRORS as exc:
            self._mark(False)
            raise DatabaseUnavailable(_brief(exc)) from exc
        self._mark(True)

    def _require_schema(self) -> None:
        if not self.schema_ready.is_set():
            raise DatabaseUnavailable("schema not ready yet")

    async def ping(self, timeout: float = 1.0) -> bool:
        try:
            async with self._conn(timeout) as conn:
                await conn.fetchval("SELECT 1")
            return True
        except (DatabaseUnavailable, asyncpg.PostgresError):
            return False

    async def insert_notification(
        self, user: str | None, data: dict[str, Any], origin: str, in_transaction: InTransaction | None = None,
    ) -> Notification:
        """Store a notification; `in_transaction` runs before commit (Postgres NOTIFY)."""
        self._require_schema()
        text = json.dumps(data, separators=(",", ":"))
        async with self._conn() as conn, conn.transaction():
            # Serialise publishers so ids become visible in id order. Without this,
            # publisher A can take id 10, publisher B id 11, and B commit first; a
            # reader that catches up or resumes with `id > 11` has then skipped 10,
            # which commits a moment later and is never delivered.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", PUBLISH_LOCK)
            row = await conn.fetchrow(
                "INSERT INTO notifications (user_id, origin, data) VALUES ($1, $2, $3) RETURNING id",
                user, origin, text,
            )
            notification = Notification(row["id"], user, origin, json.loads(text))
            if in_transaction is not None:
                await in_transaction(notification, conn)
        return notification

    async def history(self, user: str, after: int, limit: int) -> list[Notification]:
        """The user's notifications and broadcasts with id > after, ascending."""
        self._require_schema()
        async with self._conn() as conn:
            return [_row(r) for r in await conn.fetch(HISTORY, user, after, limit)]

    async def recent(self, user: str, limit: int) -> list[Notification]:
        """The user's last `limit` notifications and broadcasts, ascending."""
        self._require_schema()
        async with self._conn() as conn:
            rows = await conn.fetch(RECENT, user, limit)
        return [_row(r) for r in reversed(rows)]

    async def since(self, after: int, limit: int) -> list[Notification]:
        """Every notification with id > after (all users), ascending: for catch-up."""
        self._require_schema()
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM notifications WHERE id > $1 ORDER BY id LIMIT $2", after, limit,
            )
        return [_row(r) for r in rows]

    async def notification(self, notification_id: int) -> Notification | None:
        self._require_schema()
        async with self._conn() as conn:
            row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM notifications WHERE id = $1", notification_id)
        return _row(row) if row else None

    async def max_id(self) -> int:
        self._require_schema()
        async with self._conn() as conn:
            return await conn.fetchval("SELECT coalesce(max(id), 0) FROM notifications")

    async def item(self, item_id: int) -> dict[str, Any] | None:
        self._require_schema()
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "SELECT id, name, price_cents, description FROM items WHERE id = $1", item_id,
            )
        return dict(row) if row else None


def _brief(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
