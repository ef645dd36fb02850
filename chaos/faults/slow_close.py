"""slow-close: the proxy delays closing connections, as a congested peer does."""

from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.base import duration_param
from chaos.faults.toxic import ToxicFault, ms


@dataclass
class SlowClose(ToxicFault):
    kind = "slow-close"
    summary = "delay the close of a dependency's connections by `delay`"
    heals = "removes the toxics"
    toxic_type = "slow_close"

    delay: float = duration_param(2.0, "how long a close is held back", maximum=3600)

    def attributes(self) -> dict[str, int]:
        return {"delay": ms(self.delay)}
