"""reset: connections are reset (TCP RST) instead of closed cleanly."""

from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.base import duration_param
from chaos.faults.toxic import ToxicFault, ms


@dataclass
class Reset(ToxicFault):
    kind = "reset"
    summary = "reset a dependency's connections (TCP RST) after `after`; reconnects get reset too"
    heals = "removes the toxics"
    toxic_type = "reset_peer"

    after: float = duration_param(0.0, "how long a connection lives before it is reset", maximum=3600)

    def attributes(self) -> dict[str, int]:
        return {"timeout": ms(self.after)}
