"""Proxy: a named listener, its upstream, its toxics and its open connections."""

from __future__ import annotations

import asyncio
import errno
import logging
import random
from typing import Any

from .addresses import join_host_port, parse_upstream, resolve_listen
from .connection import Connection
from .endpoint import Endpoint
from .errors import listen_failed
from .logs import event
from .toxic_collection import ToxicCollection

log = logging.getLogger("chaos.proxy.proxy")


class Proxy:
    """Enabled means listening. Disabling closes the listener and every connection,
    which is how a dependency goes down; enabling listens again on the same port."""

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

    async def differs(self, listen: str, upstream: str) -> bool:
        """Would these settings need a restart? (Toxiproxy's Differs.)"""
        resolved = await resolve_listen(listen, self._allow_remote)
        return str(resolved) != self.listen or upstream != self.upstream

    async def start(self) -> None:
        if self.enabled:
            return
        address = await resolve_listen(self.listen, self._allow_remote)
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: Endpoint("client", self._accepted),
                address.host, address.port, reuse_address=True, backlog=1024,
            )
        except OSError as exc:
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise listen_failed(f"listen tcp {address}: bind: {reason}") from None
        bound = self._server.sockets[0].getsockname()
        self.listen = join_host_port(bound[0], bound[1])
        self.enabled = True
        log.info(event("proxy.start", proxy=self.name, listen=self.listen, upstream=self.upstream))

    async def stop(self) -> None:
        if not self.enabled:
            return
        self.enabled = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for conn in list(self.connections):
            conn.abort("proxy disabled")
        log.info(event("proxy.stop", proxy=self.name, listen=self.listen))

    async def update(self, listen: str, upstream: str, enabled: bool) -> None:
        """Toxiproxy's Update: a new address restarts the listener; then enable/disable."""
        if await self.differs(listen, upstream):
            new_upstream = parse_upstream(upstream)
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

