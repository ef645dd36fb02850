"""latency: every chunk of data through the proxy waits `latency` ± `jitter`."""

from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.base import duration_param
from chaos.faults.toxic import ToxicFault, ms


@dataclass
class Latency(ToxicFault):
    kind = "latency"
    summary = "delay a dependency's traffic (latency ± jitter per chunk)"
    heals = "removes the toxics"
    toxic_type = "latency"

    latency: float = duration_param(0.2, "added delay", maximum=600)
    jitter: float = duration_param(0.0, "random ± variation of the delay", maximum=600)

    def attributes(self) -> dict[str, int]:
        return {"latency": ms(self.latency), "jitter": ms(self.jitter)}
