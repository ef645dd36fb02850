"""partition: one replica loses one dependency while every other replica keeps it.

The fault that separates a stack that merely survives outages from one that delivers
across instances: r2 keeps its WebSocket clients but can no longer publish or receive
fan-out, while r1 and r3 carry on. Through r2's own proxy (`redis-r2`), either
disabled (connections refused at once) or blackholed (traffic silently dropped, only
timeouts notice).
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.base import Fault, choice_param, state
from chaos.faults.contract import BLACKHOLE, DOWN, AppView
from chaos.faults.proxyops import add_toxics, disable, drop_connects, enable_again, proxy_client, remove_toxics
from chaos.faults.targets import REPLICA_HELP, dependency_name, listeners, need_proxies, proxy_name, replica_target
from chaos.target import DEPENDENCIES, StackHandle, Topology


@dataclass
class Partition(Fault):
    kind = "partition"
    summary = "cut one replica off one dependency (e.g. `partition r2 redis`); the others keep it"
    heals = "enables the replica's proxy again / removes the blackhole"
    target_help = REPLICA_HELP
    second_positional = "dependency"
    app_sees = f"mode=disable: {DOWN.describe()}; mode=blackhole: {BLACKHOLE.describe()}"

    dependency: str = choice_param("broker", "the dependency to cut off: postgres, redis, or broker",
                                   (*DEPENDENCIES, "broker"))
    mode: str = choice_param("disable", "disable: connections refused and closed; "
                                        "blackhole: traffic dropped, connections hang", ("disable", "blackhole"))
    disabled: list = state(factory=list)
    toxics: list = state(factory=list)
    connects: str | None = state()  # blackhole mode: "hang", or "accepted" behind a real Toxiproxy

    @classmethod
    def resolve_target(cls, target: str, topology: Topology) -> str:
        need_proxies(topology, cls.kind)
        return replica_target(target, topology)

    def settle(self, topology: Topology) -> None:
        self.dependency = dependency_name(self.dependency, topology)

    def view(self) -> AppView:
        return DOWN if self.mode == "disable" else BLACKHOLE

    @property
    def proxy(self) -> str:
        return proxy_name(self.dependency, self.target)

    def footprint(self, topology: Topology) -> frozenset[str]:
        return frozenset({f"proxy:{self.proxy}", *listeners([self.proxy])})

    def inject(self, stack: StackHandle) -> None:
        client = proxy_client(stack)
        if self.mode == "disable":
            disable(client, [self.proxy], self.disabled)
        else:
            # As blackhole does: connects hang, and a timeout toxic of 0 passes nothing and
            # closes nothing on open connections.
            hang = drop_connects(client, self.toxics, [self.proxy], fault_id=self.fault_id, kind=self.kind)
            self.connects = "hang" if hang else "accepted"
            add_toxics(client, self.toxics, [self.proxy], ("downstream", "upstream"), fault_id=self.fault_id,
                       kind=self.kind, toxic_type="timeout", attributes={"timeout": 0})

    def heal(self, stack: StackHandle) -> None:
        if not (self.disabled or self.toxics):
            return
        client = proxy_client(stack)
        if self.toxics:
            remove_toxics(client, self.toxics)
        enable_again(client, self.disabled)
