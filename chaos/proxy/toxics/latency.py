"""latency: delays every chunk by `latency` ± `jitter` milliseconds."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .base import Stub


@dataclass
class LatencyToxic:
    latency: int = 0  # ms
    jitter: int = 0  # ms, uniform in [-jitter, +jitter)

    def delay(self, rng: random.Random) -> float:
        delay = self.latency
        if self.jitter > 0:
            delay += rng.randrange(-self.jitter, self.jitter)
        return delay / 1000

    async def pipe(self, stub: Stub) -> None:
        while (chunk := await stub.read()) is not None:
            try:
                # Measured from when the chunk was read, so chunks queued behind a slow
                # one are not delayed twice; order is kept because chunks leave in turn.
                await stub.sleep(self.delay(stub.rng) - (stub.now() - chunk.at))
            finally:
                # Also on interruption: the chunk leaves at once, never dropped. A later
                # latency toxic in the chain measures from now.
                chunk.at = stub.now()
                stub.write(chunk)
