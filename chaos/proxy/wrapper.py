"""What every toxic shares, kept out of the toxics: name, stream, toxicity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .stream import Direction
from .toxics import Toxic, attributes_of


@dataclass
class ToxicWrapper:
    name: str
    type: str
    stream: str  # as the client spelled it (Toxiproxy echoes it back unchanged)
    direction: Direction
    toxicity: float  # probability the toxic applies to a connection, rolled per connection
    toxic: Toxic

    def to_json(self) -> dict[str, Any]:
        # Field order as Toxiproxy marshals it.
        return {
            "attributes": attributes_of(self.toxic),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": json_number(self.toxicity),
        }


def json_number(value: float) -> float | int:
    """1 rather than 1.0, as Go prints a float32."""
    return int(value) if float(value).is_integer() else value
