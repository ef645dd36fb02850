"""Connection: a client socket, its upstream socket, and the two links between them."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from typing import Protocol

from .endpoint import Endpoint
from .errors import ApiError
from .link import Link
from .logs import event
from .stream import Direction
from .toxic_collection import ToxicCollection

log = logging.getLogger("chaos.proxy.conn")

DIAL_TIMEOUT = 10.0
_ids = itertools.count(1)


class ConnectionProxy(Protocol):
    """The proxy a connection was accepted by (proxy.py, which builds on this module)."""

    @property
    def name(self) -> str: ...

    @property
    def upstream(self) -> str: ...

    @property
    def toxics(self) -> ToxicCollection: ...

    @property
    def connections(self) -> set[Connection]: ...

    def upstream_address(self) -> tuple[str, int]: ...

    async def dial_addresses(self) -> list[tuple[int, str]]: ...


class Connection:
    """Lives from accept until both sockets are closed.

    End of stream travels through the toxics like data. When it reaches the other
    side it becomes a half-close (FIN) there, and the connection closes once both
    directions have ended. A stream ended early by a toxic (limit_data, timeout), a
    socket error, or a disabled proxy closes both sockets.
    """

    def __init__(self, proxy: ConnectionProxy, client: Endpoint, rng: random.Random) -> None:
        self.id = next(_ids)
        self.proxy = proxy
        self.client = client
        self.upstream = Endpoint("upstream")
        self.closing = False
        self.opened = time.monotonic()
        client.connection = self
        self.upstream.connection = self
        chains = proxy.toxics.chains()
        self.up = Link(self, Direction.UPSTREAM, client, self.upstream, chains[Direction.UPSTREAM], rng)
        self.down = Link(self, Direction.DOWNSTREAM, self.upstream, client, chains[Direction.DOWNSTREAM], rng)
        client.outgoing = self.up
        client.incoming = self.down
        self.upstream.outgoing = self.down
        self.upstream.incoming = self.up
        client.hold("dial")  # nothing to send the client's bytes to yet
        proxy.toxics.attach(self.up, self.down)
        proxy.connections.add(self)
        self._dial_task = asyncio.get_running_loop().create_task(self._dial())

    async def _dial(self) -> None:
        _, port = self.proxy.upstream_address()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(DIAL_TIMEOUT):
                # Resolved and checked once, then connected by address: no second lookup
                # can send the connection anywhere the check did not see.
                addresses = await self.proxy.dial_addresses()
                error: OSError | None = None
                for _, ip in addresses:
                    try:
                        await loop.create_connection(lambda: self.upstream, ip, port)
                        break
                    except OSError as exc:
                        error = exc
                else:
                    raise error or OSError("no address to connect to")
        except ApiError as exc:
            log.warning(event("conn.upstream_refused", proxy=self.proxy.name, id=self.id,
                              upstream=self.proxy.upstream, error=exc.message))
            self.close("upstream refused")
            return
        except (OSError, TimeoutError) as exc:
            log.warning(event("conn.upstream_failed", proxy=self.proxy.name, id=self.id,
                              client=self.client.peer, upstream=self.proxy.upstream,
                              error=str(exc) or type(exc).__name__))
            self.close("upstream unreachable")
            return
        if self.closing:
            self.upstream.abort()
            return
        if log.isEnabledFor(logging.DEBUG):
            log.debug(event("conn.open", proxy=self.proxy.name, id=self.id,
                            client=self.client.peer, upstream=self.proxy.upstream))
        self.client.release("dial")

    def link_ended(self, link: Link) -> None:
        """End of stream reached `link.dest`."""
        if self.closing:
            return
        if link.source_eof and link.source.alive and link.dest.alive:
            link.dest.write_eof()
            if self.up.ended and self.down.ended:
                self.close("closed by both sides")
        elif link.source_eof:
            self.close(f"{link.source.side} gone")
        else:
            self.close(f"{link.direction.value} stream ended by toxic")

    def endpoint_lost(self, endpoint: Endpoint, exc: Exception | None) -> None:
        if self.closing:
            return
        # What it sent before going still goes through the chain; then we close.
        endpoint.outgoing.feed_eof()  # type: ignore[union-attr]
        if exc is not None and log.isEnabledFor(logging.DEBUG):
            log.debug(event("conn.error", proxy=self.proxy.name, id=self.id,
                            side=endpoint.side, error=str(exc)))

    def close(self, reason: str) -> None:
        """Flush what is already written to each socket, then close it."""
        if self._begin_close(reason):
            self.client.close()
            self.upstream.close()

    def abort(self, reason: str) -> None:
        """Close both sockets now (proxy disabled or deleted)."""
        if self._begin_close(reason):
            self.client.abort()
            self.upstream.abort()

    async def closed(self) -> None:
        """Both sockets are closed (after `abort`, `close` or `reset`)."""
        await self.client.closed()
        await self.upstream.closed()

    def reset(self, reason: str) -> None:
        """Close both sockets with a TCP RST."""
        if self._begin_close(reason):
            self.client.abort(rst=True)
            self.upstream.abort(rst=True)

    def _begin_close(self, reason: str) -> bool:
        if self.closing:
            return False
        self.closing = True
        self._dial_task.cancel()
        self.up.stop()
        self.down.stop()
        self.proxy.toxics.detach(self.up, self.down)
        self.proxy.connections.discard(self)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(event("conn.close", proxy=self.proxy.name, id=self.id, client=self.client.peer,
                            reason=reason, sent=self.up.bytes_in, received=self.down.bytes_in,
                            seconds=round(time.monotonic() - self.opened, 3)))
        return True
