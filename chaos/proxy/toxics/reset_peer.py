"""reset_peer: `timeout` ms after the first data (or end of stream), reset the connection.

The reset is a TCP RST on both sockets (SO_LINGER 0), what a crashed peer or a
stateful firewall produces, rather than an orderly FIN.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .base import Stub


@dataclass
class ResetPeerToxic:
    timeout: int = 0  # ms

    async def pipe(self, stub: Stub) -> None:
        chunk = await stub.read()  # the first data arms it; that data is not delivered
        try:
            await stub.sleep(self.timeout / 1000)
        except asyncio.CancelledError:
            # Removed before it fired: what it held goes on after all.
            if chunk is None:
                stub.close()
            else:
                stub.write(chunk)
            raise
        stub.reset()
