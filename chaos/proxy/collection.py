"""ProxyCollection: the named proxies of one server."""

from __future__ import annotations

import logging
import random

from .addresses import resolve_upstream
from .bodies import ProxyInput
from .errors import proxy_already_exists, proxy_not_found
from .logs import event
from .proxy import Proxy

log = logging.getLogger("chaos.proxy.api")


class ProxyCollection:
    def __init__(self, rng: random.Random, allow_remote: bool) -> None:
        self._proxies: dict[str, Proxy] = {}
        self._rng = rng
        self._allow_remote = allow_remote

    def all(self) -> list[Proxy]:
        return list(self._proxies.values())

    def get(self, name: str) -> Proxy:
        proxy = self._proxies.get(name)
        if proxy is None:
            raise proxy_not_found()
        return proxy

    def new(self, spec: ProxyInput) -> Proxy:
        return Proxy(spec.name, spec.listen, spec.upstream, self._rng, self._allow_remote)

    async def add(self, spec: ProxyInput) -> Proxy:
        if spec.name in self._proxies:
            raise proxy_already_exists()
        await resolve_upstream(spec.upstream, self._allow_remote)
        proxy = self.new(spec)
        if spec.enabled:
            await proxy.start()  # a proxy that cannot listen is not added
        self._proxies[spec.name] = proxy
        log.info(event("proxy.create", proxy=proxy.name, listen=proxy.listen,
                       upstream=proxy.upstream, enabled=proxy.enabled))
        return proxy

    async def add_or_replace(self, spec: ProxyInput) -> Proxy:
        """/populate: keep a proxy whose address and upstream are unchanged (with its
        toxics and connections); replace one that differs."""
        await resolve_upstream(spec.upstream, self._allow_remote)
        existing = self._proxies.get(spec.name)
        if existing is not None:
            if not await existing.differs(spec.listen, spec.upstream):
                return existing
            await existing.stop()
        proxy = self.new(spec)
        if spec.enabled:
            await proxy.start()
        self._proxies[spec.name] = proxy
        log.info(event("proxy.populate", proxy=proxy.name, listen=proxy.listen,
                       upstream=proxy.upstream, enabled=proxy.enabled,
                       replaced=existing is not None))
        return proxy

    async def remove(self, name: str) -> None:
        proxy = self.get(name)
        await proxy.stop()
        del self._proxies[name]
        log.info(event("proxy.delete", proxy=name))

    async def clear(self) -> None:
        for proxy in self.all():
            await proxy.stop()
        self._proxies.clear()
