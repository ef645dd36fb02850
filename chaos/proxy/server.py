"""ToxiproxyServer: the proxies plus the HTTP API that drives them."""

from __future__ import annotations

import ipaddress
import logging
import random
import socket
from pathlib import Path

from . import bodies
from .api import VERSION, ToxiproxyApi
from .collection import ProxyCollection
from .errors import ApiError
from .httpserver import HttpServer
from .logs import event

log = logging.getLogger("chaos.proxy.server")


class ConfigError(Exception):
    """A populate file that cannot be used; the message says why."""


class ToxiproxyServer:
    def __init__(self, seed: int, allow_remote: bool = False) -> None:
        self.seed = seed
        self.allow_remote = allow_remote
        self.proxies = ProxyCollection(random.Random(seed), allow_remote)
        self.api = ToxiproxyApi(self.proxies)
        self._http = HttpServer(self.api.handle)
        self.address: tuple[str, int] | None = None

    async def populate_file(self, path: Path) -> int:
        """Create the proxies of a populate file (the body /populate takes)."""
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
        try:
            specs = bodies.proxy_list(bodies.decode_json(text))
            for spec in specs:
                await self.proxies.add_or_replace(spec)
        except ApiError as error:
            raise ConfigError(f"config {path}: {error.message}") from None
        return len(specs)

    async def start(self, host: str, port: int) -> tuple[str, int]:
        if not self.allow_remote and not _is_loopback(host):
            raise ConfigError(f"API host {host!r} is not loopback; pass --allow-remote to listen on it")
        try:
            self.address = await self._http.start(host, port)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        log.info(event("api.listen", url=f"http://{self.address[0]}:{self.address[1]}",
                       version=VERSION, seed=self.seed))
        return self.address

    async def stop(self) -> None:
        await self._http.stop()
        await self.proxies.clear()
        log.info(event("api.stop"))


def _is_loopback(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    return all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


