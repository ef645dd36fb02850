"""limit_data: lets `bytes` bytes through on each connection, then closes it."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Stub


@dataclass
class LimitDataState:
    transmitted: int = 0  # kept when the limit is updated on a live connection


@dataclass
class LimitDataToxic:
    bytes: int = 0

    def new_state(self) -> LimitDataState:
        return LimitDataState()

    async def pipe(self, stub: Stub) -> None:
        state: LimitDataState = stub.state
        while (chunk := await stub.read()) is not None:
            remaining = max(self.bytes - state.transmitted, 0)
            data = chunk.data if len(chunk.data) <= remaining else chunk.data[:remaining]
            if len(data):
                stub.write(chunk.part(data))
                state.transmitted += len(data)
            if state.transmitted >= self.bytes:
                return  # the stub closes: exactly `bytes` went through
