"""What a client library sees while a dependency is failed: probes for the fault contract.

A `ClientView` is what one failure looks like from the app's side: a socket that was
open when it began, a new TCP connect, the client library's own error on a connection
it had open and on a new one, and afterwards whether a key or row written before is
still there. The same probes run against a real server killed by hand and against a
fault injected through the stack, and the two views must be equal
(test_client_view.py); chaos/faults/contract.py says in words what they must be. A
Docker backend's crash can be held to the same views with these probes.

Every probe has a deadline: a hang is an observation ("hang"), never a stuck test.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from dataclasses import dataclass, fields
from urllib.parse import urlsplit

import asyncpg
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

PROBE_TIMEOUT = 2.0


@dataclass(frozen=True)
class ClientView:
    open_socket: str  # a raw socket open before the failure: closed | reset | hang | open
    new_socket: str  # a raw connect during it: refused | hang | accepted, then closed | accepted
    client_open: str  # the library's next call on a connection it had open
    client_new: str  # the library's call on a new client
    data: str = "-"  # after the restart: kept | lost

    def differences(self, other: "ClientView") -> list[str]:
        return [f"{f.name}: {getattr(self, f.name)!r} != {getattr(other, f.name)!r}"
                for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 0


def open_socket(address: tuple[str, int], hello: bytes) -> socket.socket:
    """A raw connection that has talked to the server once (so it is really open)."""
    sock = socket.create_connection(address, timeout=PROBE_TIMEOUT)
    sock.settimeout(PROBE_TIMEOUT)
    sock.sendall(hello)
    if not sock.recv(4096):
        raise AssertionError(f"{address}: the server closed a fresh connection")
    return sock


def held_socket_outcome(sock: socket.socket) -> str:
    """What a socket that was open sees now, reading until the end of stream. A server
    that goes says so or not (a Postgres backend outliving its postmaster sends a FATAL
    error first); either way the stream ends: closed."""
    sock.settimeout(PROBE_TIMEOUT)
    got = b""
    try:
        while data := sock.recv(4096):
            got += data
    except TimeoutError:
        return "open" if got else "hang"
    except ConnectionResetError:
        return "reset"
    finally:
        sock.close()
    return "closed"


def new_socket_outcome(address: tuple[str, int], hello: bytes) -> str:
    """A fresh TCP connect, then one request: how a client learns the server is gone."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(PROBE_TIMEOUT)
    try:
        try:
            sock.connect(address)
        except ConnectionRefusedError:
            return "refused"
        except TimeoutError:
            return "hang"
        try:
            sock.sendall(hello)
            data = sock.recv(4096)
        except TimeoutError:
            return "accepted, then hang"
        except (ConnectionResetError, BrokenPipeError):
            return "accepted, then reset"
        return "accepted, then closed" if not data else "accepted"
    finally:
        sock.close()


def error_name(exc: BaseException) -> str:
    """`ConnectionError(ECONNREFUSED)`: the library's class and the OS error beneath it."""
    name = type(exc).__name__
    cause: BaseException | None = exc
    seen = 0
    while cause is not None and seen < 5:
        if isinstance(cause, OSError) and cause.errno in errno.errorcode:
            return f"{name}({errno.errorcode[cause.errno]})"
        if isinstance(cause, (TimeoutError, asyncio.TimeoutError)):
            return f"{name}(timeout)"
        cause = cause.__cause__ or cause.__context__
        seen += 1
    return name


# ---------------------------------------------------------------- Redis (redis-py)

REDIS_HELLO = b"PING\r\n"


def redis_client(url: str) -> redis.Redis:
    # Retries off: the test wants the failure itself, not the library hiding it.
    return redis.Redis.from_url(url, socket_timeout=PROBE_TIMEOUT, socket_connect_timeout=PROBE_TIMEOUT,
                                retry=Retry(NoBackoff(), 0), health_check_interval=0)


def redis_outcome(client: redis.Redis) -> str:
    try:
        client.ping()
    except redis.RedisError as exc:
        return error_name(exc)
    return "ok"


class RedisProbe:
    """A redis-py client and a raw socket, both connected before the failure."""

    def __init__(self, url: str, key: str = "gauntlet:probe") -> None:
        self.url = url
        self.key = key
        self.address = host_port(url)
        self.client = redis_client(url)
        self.client.set(key, "before")  # a pooled connection, open, and something to keep
        self.sock = open_socket(self.address, REDIS_HELLO)

    def during(self) -> dict[str, str]:
        """Observe while the server is failed (call once, right after the failure)."""
        seen = {"open_socket": held_socket_outcome(self.sock),
                "new_socket": new_socket_outcome(self.address, REDIS_HELLO),
                "client_open": redis_outcome(self.client)}
        fresh = redis_client(self.url)
        try:
            seen["client_new"] = redis_outcome(fresh)
        finally:
            fresh.close()
        return seen

    def after(self, deadline: float = 20.0) -> str:
        """Once the server is back: was the key kept?"""
        client = redis_client(self.url)
        try:
            end = time.monotonic() + deadline
            while True:
                try:
                    return "kept" if client.get(self.key) == b"before" else "lost"
                except redis.RedisError:
                    if time.monotonic() > end:
                        raise
                    time.sleep(0.1)
        finally:
            client.close()
            self.client.close()


# ---------------------------------------------------------------- Postgres (asyncpg)

# An SSLRequest: the server answers one byte ('N' here) without authentication.
POSTGRES_HELLO = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"


# An app's event loop runs all the time, so its driver reads what the server sent
# (an error, the end of stream) as it arrives; the probe's loop catches up this long first.
APP_LOOP_CATCH_UP = 0.3


async def _pg_outcome(call) -> str:
    try:
        await asyncio.wait_for(call(), PROBE_TIMEOUT + 1)
    except Exception as exc:  # whatever the driver raises is the observation
        return error_name(exc)
    return "ok"


class PostgresProbe:
    """An asyncpg connection and a raw socket, both opened before the failure, and a
    committed row that must survive it."""

    def __init__(self, dsn: str, loop: asyncio.AbstractEventLoop, table: str = "gauntlet_probe") -> None:
        self.dsn = dsn
        self.loop = loop
        self.table = table
        self.address = host_port(dsn)
        self.conn = loop.run_until_complete(asyncpg.connect(dsn, timeout=PROBE_TIMEOUT))
        loop.run_until_complete(self.conn.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (v text); DELETE FROM {table}; "
            f"INSERT INTO {table} VALUES ('before')"))
        self.sock = open_socket(self.address, POSTGRES_HELLO)

    def during(self) -> dict[str, str]:
        self.loop.run_until_complete(asyncio.sleep(APP_LOOP_CATCH_UP))
        seen = {"open_socket": held_socket_outcome(self.sock),
                "new_socket": new_socket_outcome(self.address, POSTGRES_HELLO),
                "client_open": self.loop.run_until_complete(_pg_outcome(lambda: self.conn.fetchval("SELECT 1")))}

        async def fresh() -> None:
            conn = await asyncpg.connect(self.dsn, timeout=PROBE_TIMEOUT)
            await conn.close()

        seen["client_new"] = self.loop.run_until_complete(_pg_outcome(fresh))
        return seen

    def after(self, deadline: float = 30.0) -> str:
        async def read() -> str:
            end = time.monotonic() + deadline
            while True:
                try:
                    conn = await asyncpg.connect(self.dsn, timeout=PROBE_TIMEOUT)
                    break
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError):
                    if time.monotonic() > end:
                        raise
                    await asyncio.sleep(0.2)
            try:
                rows = await conn.fetch(f"SELECT v FROM {self.table}")
            finally:
                await conn.close()
            return "kept" if [r["v"] for r in rows] == ["before"] else "lost"

        try:
            return self.loop.run_until_complete(read())
        finally:
            self.loop.run_until_complete(self._close())

    async def _close(self) -> None:
        try:
            await asyncio.wait_for(self.conn.close(), PROBE_TIMEOUT)
        except (OSError, asyncpg.InterfaceError, asyncio.TimeoutError):
            self.conn.terminate()


def view(during: dict[str, str], data: str) -> ClientView:
    return ClientView(data=data, **during)
