"""The toxic interface: one method, `pipe(stub)`, plus two optional abilities.

A toxic is a typed dataclass whose fields are its Toxiproxy attributes. One toxic
object serves every connection of its proxy; what is per connection lives on the
stub (its queue, its `state`, its random generator).

Interruption is task cancellation: every `await` in `pipe` is a point where the toxic
may be stopped (removed, updated, connection closed). A toxic that holds a chunk it has
read but not yet written passes it on when interrupted, so removing or updating a toxic
never drops data already read.
"""

from __future__ import annotations

import dataclasses
import random
import re
from typing import Any, Protocol, runtime_checkable

from ..stream import Chunk


class Stub(Protocol):
    """What a toxic sees of one link (one connection, one direction)."""

    state: Any
    rng: random.Random

    async def read(self) -> Chunk | None:
        """The next chunk, or None at end of stream. Waits for data."""

    def write(self, chunk: Chunk) -> None:
        """Pass a chunk on to the next toxic or the destination socket. Never blocks."""

    def close(self) -> None:
        """End the stream here: what follows sees end of stream, the connection closes."""

    def reset(self) -> None:
        """Close both sockets of the connection with a TCP RST."""

    async def sleep(self, seconds: float) -> None:
        """Wait at least `seconds` (never less); zero or negative: just yield."""

    def now(self) -> float:
        """The clock chunk timestamps use."""


class Toxic(Protocol):
    async def pipe(self, stub: Stub) -> None:
        """Move data from stub.read() to stub.write() until end of stream.

        Returning means the stream ends at this toxic: the stub then closes its output.
        """


@runtime_checkable
class CleanupToxic(Protocol):
    def cleanup(self, stub: Stub) -> None:
        """Called on each live stub when the toxic is removed, after interruption."""


@runtime_checkable
class StatefulToxic(Protocol):
    def new_state(self) -> Any:
        """Per-connection state, kept across updates of the toxic's attributes."""


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class BadAttribute(ValueError):
    """An attribute of the wrong type; the message names it."""


def attributes_of(toxic: Any) -> dict[str, int]:
    return dataclasses.asdict(toxic)


def apply_attributes(toxic: Any, raw: dict[str, Any]) -> None:
    """Set the attributes present in `raw`.

    Toxiproxy ignores unknown keys, so a misspelt `latncy` makes a toxic that does
    nothing; here it is refused, naming the attributes the toxic has. All attributes
    are integers in Toxiproxy (Go int/int64), so floats, strings and booleans are
    refused rather than silently truncated. Nothing is changed if any attribute is bad.
    """
    known = [f.name for f in dataclasses.fields(toxic)]
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        kind = re.sub(r"(?<!^)(?=[A-Z])", "_", type(toxic).__name__.removesuffix("Toxic")).lower()
        has = f"its attributes are {', '.join(known)}" if known else "it has no attributes"
        raise BadAttribute(f"unknown attribute {unknown[0]!r} for a {kind} toxic; {has}")
    updates: dict[str, int] = {}
    for field in dataclasses.fields(toxic):
        if field.name not in raw:
            continue
        value = raw[field.name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadAttribute(f"attribute {field.name} must be an integer, got {value!r}")
        if not INT64_MIN <= value <= INT64_MAX:
            raise BadAttribute(f"attribute {field.name} is out of range (64-bit integer): {value}")
        updates[field.name] = value
    for name, value in updates.items():
        setattr(toxic, name, value)
