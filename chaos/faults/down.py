"""down: the dependency is unreachable: its proxies are disabled.

A disabled proxy closes its listener and every open connection, so connects are
refused at once: the quickly detected outage (a dead host with its port closed), as
opposed to `blackhole`, which only timeouts detect, and `crash`, which kills the real
server for every replica.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.base import Fault, state
from chaos.faults.proxyops import proxy_client, set_enabled
from chaos.faults.targets import DEPENDENCY_HELP, dependency_target, need_proxies, proxies_for
from chaos.target import StackHandle, Topology


@dataclass
class Down(Fault):
    kind = "down"
    summary = "make a dependency unreachable: proxies disabled, connections closed, connects refused"
    heals = "enables the proxies again"
    target_help = DEPENDENCY_HELP

    disabled: list = state(factory=list)

    @classmethod
    def resolve_target(cls, target: str, topology: Topology) -> str:
        need_proxies(topology, cls.kind)
        return dependency_target(target, topology)

    def footprint(self, topology: Topology) -> frozenset[str]:
        return frozenset(f"proxy:{p}" for p in proxies_for(self.target, topology.replicas))

    def inject(self, stack: StackHandle) -> None:
        client = proxy_client(stack)
        for proxy in proxies_for(self.target, stack.replica_names()):
            self.disabled.append(proxy)
            set_enabled(client, [proxy], False)

    def heal(self, stack: StackHandle) -> None:
        if self.disabled:
            set_enabled(proxy_client(stack), self.disabled, True)
            self.disabled.clear()
