"""scale-out / scale-in: change the number of replicas while load runs.

Scaling is a fault for a realtime stack: new replicas must join the fan-out before
they take traffic, and removed ones must hand their sockets over without losing
messages. Replica names are never reused, so healing a scale-in adds fresh replicas
(r4, r5, ...) rather than bringing back the removed names.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.base import Fault, FaultError, number_param, state
from chaos.faults.targets import replica_target
from chaos.target import StackHandle, Topology

STACK = "stack"
MAX_STEP = 8


def is_stack_word(target: str) -> bool:
    """`stack`, `all` or no target at all: the whole replica set, in any case."""
    return target.strip().lower() in (STACK, "all", "")


def _stack_target(kind: str, target: str) -> str:
    if not is_stack_word(target):
        raise ValueError(f"{kind} acts on the whole stack: target must be 'stack', not {target!r}")
    return STACK


@dataclass
class ScaleOut(Fault):
    kind = "scale-out"
    summary = "add replicas to the running stack (they join nginx once ready)"
    heals = "removes the replicas it added"
    target_help = "stack"

    count: int = number_param(1, "replicas to add", minimum=1, maximum=MAX_STEP, integer=True)
    added: list = state(factory=list)

    @classmethod
    def resolve_target(cls, target: str, topology: Topology) -> str:
        return _stack_target(cls.kind, target)

    def footprint(self, topology: Topology) -> frozenset[str]:
        return frozenset({"scale"})

    def inject(self, stack: StackHandle) -> None:
        for _ in range(self.count):
            if self.cancelled.is_set():
                return
            self.added.append(stack.add_replica())

    def heal(self, stack: StackHandle) -> None:
        for name in list(self.added):
            if name in stack.replica_names():
                stack.remove_replica(name)
            self.added.remove(name)


@dataclass
class ScaleIn(Fault):
    kind = "scale-in"
    summary = "remove replicas (graceful stop after leaving nginx): one by name, or the newest `count`"
    heals = "adds as many fresh replicas as it removed"
    target_help = "a replica (r3), or stack (the newest `count` replicas)"

    count: int = number_param(1, "replicas to remove when the target is 'stack'", minimum=1, maximum=MAX_STEP,
                              integer=True)
    removed: list = state(factory=list)
    replacements: list = state(factory=list)

    @classmethod
    def resolve_target(cls, target: str, topology: Topology) -> str:
        if is_stack_word(target):
            return STACK
        return replica_target(target, topology)

    def check(self) -> None:
        # Runs on the target as written too (timelines check parameters before any stack).
        if not is_stack_word(self.target) and self.count != 1:
            raise ValueError("scale-in: count applies only to target 'stack'; a named replica is one replica")

    def victims(self, names: list[str] | tuple[str, ...]) -> list[str]:
        return list(names)[-self.count:] if is_stack_word(self.target) else [self.target]

    def footprint(self, topology: Topology) -> frozenset[str]:
        return frozenset({"scale", *(f"replica:{r}" for r in self.victims(topology.replicas))})

    def inject(self, stack: StackHandle) -> None:
        names = stack.replica_names()
        victims = self.victims(names)
        if len(victims) >= len(names):
            raise FaultError(f"scale-in: removing {len(victims)} of {len(names)} replicas would leave none")
        for name in victims:
            if name not in names:
                raise FaultError(f"scale-in: no replica named {name!r}")
        for name in victims:
            if self.cancelled.is_set():
                return
            stack.remove_replica(name)
            self.removed.append(name)

    def heal(self, stack: StackHandle) -> None:
        while len(self.replacements) < len(self.removed):
            self.replacements.append(stack.add_replica())
