"""What every toxic fault shares (as Toxiproxy's wrapper does): the target proxies, the
stream, the toxicity, and the bookkeeping that lets heal remove exactly its toxics.

A target `redis` means every replica's `redis-rN` proxy (the dependency is slow for
everyone); `redis@r2` means only r2's connection. `broker` is the dependency that
carries the configured broker's fan-out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from chaos.faults.base import choice_param, number_param, state
from chaos.faults.proxyops import add_toxics, proxy_client, remove_toxics
from chaos.faults.targets import ProxyFault, proxies_for
from chaos.target import StackHandle

STREAMS = ("downstream", "upstream", "both")


@dataclass
class ToxicFault(ProxyFault):
    toxic_type: ClassVar[str]

    stream: str = choice_param("downstream", "direction: downstream (server to replica), upstream, or both",
                               STREAMS)
    toxicity: float = number_param(1.0, "share of connections affected, 0..1", minimum=0.0, maximum=1.0)
    toxics: list = state(factory=list)  # [proxy, toxic name] pairs still to remove

    def attributes(self) -> dict[str, int]:
        """The toxic's Toxiproxy attributes (integers, milliseconds or KB/s)."""
        return {}

    def streams(self) -> tuple[str, ...]:
        return ("downstream", "upstream") if self.stream == "both" else (self.stream,)

    def inject(self, stack: StackHandle) -> None:
        add_toxics(proxy_client(stack), self.toxics, proxies_for(self.target, stack.replica_names()),
                   self.streams(), fault_id=self.fault_id, kind=self.kind, toxic_type=self.toxic_type,
                   attributes=self.attributes(), toxicity=self.toxicity)

    def heal(self, stack: StackHandle) -> None:
        if self.toxics:
            remove_toxics(proxy_client(stack), self.toxics)


def ms(seconds: float) -> int:
    return int(round(seconds * 1000))
