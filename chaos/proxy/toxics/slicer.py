"""slicer: cuts chunks into pieces of about `average_size` ± `size_variation` bytes,
`delay` microseconds apart, as a congested network delivers them."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .base import Stub


@dataclass
class SlicerToxic:
    average_size: int = 0  # bytes
    size_variation: int = 0  # bytes, should be below average_size
    delay: int = 0  # µs between pieces

    def cuts(self, size: int, rng: random.Random) -> list[int]:
        """End offsets of the pieces. Halves recursively around the middle, so small
        and large pieces are spread evenly rather than bunched at one end."""
        average = max(self.average_size, 1)  # 0 would never finish cutting
        variation = max(self.size_variation, 0)
        ends: list[int] = []
        spans = [(0, size)]
        while spans:
            start, end = spans.pop()
            if end - start - average <= variation:
                ends.append(end)
                continue
            middle = start + (end - start) // 2
            if variation:
                middle += rng.randrange(-variation, variation)
            middle = min(max(middle, start + 1), end - 1)
            spans.append((middle, end))  # popped second: pieces come out in order
            spans.append((start, middle))
        return ends

    async def pipe(self, stub: Stub) -> None:
        while (chunk := await stub.read()) is not None:
            data = memoryview(chunk.data)
            sent = 0
            try:
                for end in self.cuts(len(data), stub.rng):
                    stub.write(chunk.part(data[sent:end]))
                    sent = end
                    await stub.sleep(self.delay / 1_000_000)
            finally:
                if sent < len(data):  # interrupted: the rest in one piece
                    stub.write(chunk.part(data[sent:]))
