"""Proxy: a named listener, its upstream, its toxics and its open connections."""

from __future__ import annotations

import asyncio
import errno
import logging
import random
from typing import Any

from .addresses import join_host_port, parse_upstream, resolve_listen, resolve_upstream
from .connection import Connection
from .endpoint import Endpoint
from .errors import listen_failed
from .held import HeldListener
from .logs import event
from .toxic_collection import ToxicCollection
from .toxics.syn_drop import TYPE as SYN_DROP

log = logging.getLogger("chaos.proxy.proxy")

# How long disabling waits for its connections' sockets to be closed.
CLOSE_WAIT = 2.0


class Proxy:
    """Enabled means listening. Disabling closes the listener and every connection,
    which is how a dependency goes down; enabling listens again on the same port.
    While a `syn_drop` toxic is there, the listener is a held one: connects hang."""

    def __init__(self, name: str, listen: str, upstream: str, rng: random.Random, allow_remote: bool) -> None:
        self.name = name
        self.listen = listen  # as given until the first start, then the bound address
        self.upstream = upstream
        self.enabled = False
        self.toxics = ToxicCollection()
        self.connections: set[Connection] = set()
        self._upstream = parse_upstream(upstream)
        self._rng = rng
        self._allow_remote = allow_remote
        self._server: asyncio.AbstractServer | None = None
        self._held: HeldListener | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [w.to_json() for w in self.toxics.all()],
        }

    def upstream_address(self) -> tuple[str, int]:
        return self._upstream.host, self._upstream.port

    async def dial_addresses(self) -> list[tuple[int, str]]:
        """The upstream resolved and checked now (a name may resolve elsewhere later)."""
        return await resolve_upstream(self.upstream, self._allow_remote)

    async def differs(self, listen: str, upstream: str) -> bool:
        """Would these settings need a restart? (Toxiproxy's Differs.)"""
        resolved = await resolve_listen(listen, self._allow_remote)
        return str(resolved) != self.listen or upstream != self.upstream

    def drops_connects(self) -> bool:
        return any(w.type == SYN_DROP for w in self.toxics.all())

    async def start(self) -> None:
        if self.enabled:
            return
        await self._listen()
        self.enabled = True
        log.info(event("proxy.start", proxy=self.name, listen=self.listen, upstream=self.upstream))

    async def _listen(self) -> None:
        """Listen the way the toxics say: accepting, or held (connects hang)."""
        address = await resolve_listen(self.listen, self._allow_remote)
        try:
            if self.drops_connects():
                self._held = HeldListener(address)
                bound = self._held.listener.getsockname()
            else:
                self._server = await asyncio.get_running_loop().create_server(
                    lambda: Endpoint("client", self._accepted),
                    address.host, address.port, reuse_address=True, backlog=1024,
                )
                bound = self._server.sockets[0].getsockname()
        except OSError as exc:
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise listen_failed(f"listen tcp {address}: bind: {reason}") from None
        self.listen = join_host_port(bound[0], bound[1])

    def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()  # closes the listening socket at once; connections stay
        held, self._held = self._held, None
        if held is not None:
            held.close()

    async def sync_listener(self) -> None:
        """After a toxic change: swap between the accepting and the held listener on the
        same port, leaving open connections alone."""
        if self.enabled and self.drops_connects() != (self._held is not None):
            self._close_listener()
            await self._listen()
            log.info(event("proxy.listener", proxy=self.name, listen=self.listen,
                           connects="dropped" if self._held else "accepted"))

    async def stop(self) -> None:
        if not self.enabled:
            return
        self.enabled = False
        self._close_listener()
        aborted = list(self.connections)
        for conn in aborted:
            conn.abort("proxy disabled")
        # Answer only once every client has its FIN, as when a server process dies: a
        # client told "down" that still writes into a half-closed socket would get a
        # reset that no real outage sends it first.
        try:
            async with asyncio.timeout(CLOSE_WAIT):
                await asyncio.gather(*(conn.closed() for conn in aborted))
        except TimeoutError:
            log.warning(event("proxy.stop_slow", proxy=self.name, connections=len(aborted)))
        log.info(event("proxy.stop", proxy=self.name, listen=self.listen))

    async def update(self, listen: str, upstream: str, enabled: bool) -> None:
        """Toxiproxy's Update: a new address restarts the listener; then enable/disable."""
        if await self.differs(listen, upstream):
            new_upstream = parse_upstream(upstream)
            await resolve_upstream(upstream, self._allow_remote)
            await self.stop()
            self.listen, self.upstream, self._upstream = listen, upstream, new_upstream
        if enabled and not self.enabled:
            await self.start()
        elif not enabled and self.enabled:
            await self.stop()

    def _accepted(self, client: Endpoint) -> None:
        if not self.enabled:
            client.abort()
            return
        Connection(self, client, random.Random(self._rng.getrandbits(64)))

