"""The toxics of one proxy, per direction, and the live links they act on."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .stream import Direction
from .wrapper import ToxicWrapper

if TYPE_CHECKING:
    from .link import Link


class ToxicCollection:
    """Changes apply to open connections as well as new ones, as in Toxiproxy: a new
    toxic joins the end of every live link's chain, a removed one leaves it."""

    def __init__(self) -> None:
        self._chains: dict[Direction, list[ToxicWrapper]] = {d: [] for d in Direction}
        self._links: set[Link] = set()

    def chains(self) -> dict[Direction, list[ToxicWrapper]]:
        return {d: list(chain) for d, chain in self._chains.items()}

    def all(self) -> list[ToxicWrapper]:
        # Upstream first, then downstream, each in the order added: Toxiproxy's order.
        return [w for d in Direction for w in self._chains[d]]

    def find(self, name: str) -> ToxicWrapper | None:
        for wrapper in self.all():
            if wrapper.name == name:
                return wrapper
        return None

    def attach(self, *links: Link) -> None:
        self._links.update(links)

    def detach(self, *links: Link) -> None:
        self._links.difference_update(links)

    def add(self, wrapper: ToxicWrapper) -> None:
        self._chains[wrapper.direction].append(wrapper)
        for link in self._links_for(wrapper):
            link.add(wrapper)

    async def update(self, wrapper: ToxicWrapper) -> None:
        await asyncio.gather(*(link.update(wrapper) for link in self._links_for(wrapper)))

    async def remove(self, wrapper: ToxicWrapper) -> None:
        self._chains[wrapper.direction].remove(wrapper)
        await asyncio.gather(*(link.remove(wrapper) for link in self._links_for(wrapper)))

    async def reset(self) -> None:
        for wrapper in self.all():
            await self.remove(wrapper)

    def _links_for(self, wrapper: ToxicWrapper) -> list[Link]:
        return [link for link in self._links if link.direction is wrapper.direction]
