"""noop: passes everything through. Also what runs when toxicity says "not this time"."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Stub


@dataclass
class NoopToxic:
    async def pipe(self, stub: Stub) -> None:
        while (chunk := await stub.read()) is not None:
            stub.write(chunk)
