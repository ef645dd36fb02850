"""timeout: lets no data through, and closes the connection `timeout` ms later.

As in Toxiproxy, the timer restarts whenever data arrives (data is dropped, but it
resets the clock), and timeout 0 never closes: a black hole. Removing the toxic closes
the connections it held, because the data it swallowed is gone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .base import Stub


@dataclass
class TimeoutToxic:
    timeout: int = 0  # ms; 0 = hold forever

    async def pipe(self, stub: Stub) -> None:
        limit = self.timeout / 1000 if self.timeout > 0 else None
        while True:
            try:
                async with asyncio.timeout(limit):
                    chunk = await stub.read()
            except TimeoutError:
                return  # the stub closes: connection closed
            if chunk is None:
                return

    def cleanup(self, stub: Stub) -> None:
        stub.close()
