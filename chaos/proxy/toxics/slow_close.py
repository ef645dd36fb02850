"""slow_close: delays the end of the stream by `delay` milliseconds."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Stub


@dataclass
class SlowCloseToxic:
    delay: int = 0  # ms

    async def pipe(self, stub: Stub) -> None:
        while (chunk := await stub.read()) is not None:
            stub.write(chunk)
        try:
            await stub.sleep(self.delay / 1000)
        finally:
            # Interrupted or not, the end of stream it holds goes on.
            stub.close()
