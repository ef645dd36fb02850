"""bandwidth: limits a stream to `rate` KB/s (1 KB = 1000 bytes). Rate 0 stalls it."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Stub

TICK = 0.1  # large chunks go out in slices of rate x 100 ms, as in Toxiproxy


@dataclass
class BandwidthToxic:
    rate: int = 0  # KB/s

    async def pipe(self, stub: Stub) -> None:
        # Seconds owed to the limiter. It carries the timer's rounding error from one
        # chunk to the next, so the average rate stays exact.
        owed = 0.0
        while (chunk := await stub.read()) is not None:
            data = memoryview(chunk.data)
            try:
                rate = self.rate
                owed = owed + len(data) / (rate * 1000) if rate > 0 else 0.0
                per_tick = max(int(rate * 1000 * TICK), 0)
                while len(data) > per_tick:  # with rate 0 this never ends: a stall
                    await stub.sleep(TICK)
                    if per_tick:
                        stub.write(chunk.part(data[:per_tick]))
                        data = data[per_tick:]
                        owed -= TICK
                started = stub.now()
                await stub.sleep(owed)
                owed -= stub.now() - started
            finally:
                # Normally the rest of the chunk; on interruption whatever is unsent.
                if len(data):
                    stub.write(chunk.part(data))
