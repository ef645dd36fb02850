"""bandwidth: a thin pipe; large results and bursts of fan-out queue up behind it."""

from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.base import number_param
from chaos.faults.toxic import ToxicFault


@dataclass
class Bandwidth(ToxicFault):
    kind = "bandwidth"
    summary = "limit a dependency's throughput to `rate` KB/s"
    heals = "removes the toxics"
    toxic_type = "bandwidth"

    rate: int = number_param(100, "KB per second", minimum=1, maximum=10_000_000, integer=True)

    def attributes(self) -> dict[str, int]:
        return {"rate": self.rate}
