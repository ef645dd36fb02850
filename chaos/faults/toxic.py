"""What every toxic fault shares (as Toxiproxy's wrapper does): the target proxies, the
stream, the toxicity, and the bookkeeping that lets heal remove exactly its toxics.

A target `redis` means every replica's `redis-rN` proxy (the dependency is slow for
everyone); `redis@r2` means only r2's connection. `broker` is the dependency that
carries the configured broker's fan-out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from chaos.faults.base import Fault, choice_param, number_param, state
from chaos.faults.proxyops import proxy_client, remove_toxics, toxic_name
from chaos.faults.targets import DEPENDENCY_HELP, dependency_target, need_proxies, proxies_for
from chaos.target import StackHandle, Topology

STREAMS = ("downstream", "upstream", "both")


@dataclass
class ToxicFault(Fault):
    toxic_type: ClassVar[str]
    target_help: ClassVar[str] = DEPENDENCY_HELP

    stream: str = choice_param("downstream", "direction: downstream (server to replica), upstream, or both",
                               STREAMS)
    toxicity: float = number_param(1.0, "share of connections affected, 0..1", minimum=0.0, maximum=1.0)
    toxics: list = state(factory=list)  # [proxy, toxic name] pairs still to remove

    def attributes(self) -> dict[str, int]:
        """The toxic's Toxiproxy attributes (integers, milliseconds or KB/s)."""
        return {}

    @classmethod
    def resolve_target(cls, target: str, topology: Topology) -> str:
        need_proxies(topology, cls.kind)
        return dependency_target(target, topology)

    def footprint(self, topology: Topology) -> frozenset[str]:
        return frozenset(f"proxy:{p}" for p in proxies_for(self.target, topology.replicas))

    def streams(self) -> tuple[str, ...]:
        return ("downstream", "upstream") if self.stream == "both" else (self.stream,)

    def inject(self, stack: StackHandle) -> None:
        client = proxy_client(stack)
        for proxy in proxies_for(self.target, stack.replica_names()):
            for stream in self.streams():
                name = toxic_name(self.fault_id, self.kind, stream)
                # Recorded before the call: a lost response must not leave an unhealed toxic.
                self.toxics.append([proxy, name])
                client.add_toxic(proxy, self.toxic_type, self.attributes(), name=name, stream=stream,
                                 toxicity=self.toxicity)

    def heal(self, stack: StackHandle) -> None:
        if self.toxics:
            remove_toxics(proxy_client(stack), self.toxics)


def ms(seconds: float) -> int:
    return int(round(seconds * 1000))
