"""blackhole: data goes in and nothing comes back; connections stay open.

Toxiproxy's `timeout` toxic with timeout 0: nothing passes and nothing is closed, the
network failure that only client-side timeouts detect. New connections are accepted,
then hang the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.base import choice_param
from chaos.faults.toxic import STREAMS, ToxicFault


@dataclass
class Blackhole(ToxicFault):
    kind = "blackhole"
    summary = "silently drop a dependency's traffic, connections stay open (only timeouts notice)"
    heals = "removes the toxics; traffic flows again on the same connections"
    toxic_type = "timeout"

    stream: str = choice_param("both", "direction: downstream, upstream, or both", STREAMS)

    def attributes(self) -> dict[str, int]:
        return {"timeout": 0}
