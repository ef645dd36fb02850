"""What flows through a link: directions and timestamped chunks."""

from __future__ import annotations

import enum


class Direction(enum.Enum):
    """Which way a toxic acts. Toxiproxy's `stream` field names it."""

    UPSTREAM = "upstream"  # client -> upstream server
    DOWNSTREAM = "downstream"  # upstream server -> client


def parse_direction(text: str) -> Direction | None:
    """Toxiproxy accepts the stream name in any letter case."""
    try:
        return Direction(text.lower())
    except ValueError:
        return None


class Chunk:
    """Bytes read from a socket and when they were read (time.monotonic(), seconds).

    The timestamp lets a latency toxic delay a chunk from when it arrived, not from
    when the toxic got round to it, so a backlog does not add latency twice.
    """

    __slots__ = ("data", "at")

    def __init__(self, data: bytes | memoryview, at: float) -> None:
        self.data = data
        self.at = at

    def part(self, data: bytes | memoryview) -> Chunk:
        """A piece of this chunk, read at the same time."""
        return Chunk(data, self.at)
