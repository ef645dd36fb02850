"""rolling-restart: restart every replica, one at a time, the way a deploy rolls out.

Each replica is drained first (so no new requests reach it), stopped gracefully
(SIGTERM: the app closes its sockets with 1001 and clients reconnect elsewhere),
started again, waited for until ready, and put back; then the next one. A stack that
fans out correctly loses nothing and keeps serving throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.base import Fault, choice_param, duration_param, state
from chaos.target import StackHandle, Topology

ALL = "all"


@dataclass
class RollingRestart(Fault):
    kind = "rolling-restart"
    summary = "restart every replica one by one, gracefully, draining each first"
    heals = "puts drained replicas back and starts any replica left dead"
    target_help = "all (every replica, in order)"
    sustained = False

    pause: float = duration_param(2.0, "wait between one replica being ready and the next one's stop",
                                  maximum=600)
    drain: str = choice_param("yes", "take each replica out of the load balancer before stopping it", ("yes", "no"))
    restarted: list = state(factory=list)
    drained_now: list = state(factory=list)

    @classmethod
    def resolve_target(cls, target: str, topology: Topology) -> str:
        if target.strip().lower() not in (ALL, "stack", "replicas", ""):
            raise ValueError(f"rolling-restart acts on every replica: target must be 'all', not {target!r}")
        return ALL

    def footprint(self, topology: Topology) -> frozenset[str]:
        return frozenset(f"replica:{r}" for r in topology.replicas)

    def nominal_seconds(self, topology: Topology) -> float:
        return len(topology.replicas) * (4.0 + self.pause)

    def inject(self, stack: StackHandle) -> None:
        names = stack.replica_names()
        for i, name in enumerate(names):
            if self.cancelled.is_set():
                return
            use_drain = self.drain == "yes" and len(names) > 1 and name not in stack.drained()
            if use_drain:
                stack.drain(name)
                self.drained_now.append(name)
            stack.restart_replica(name, graceful=True)
            self.restarted.append(name)
            if use_drain:
                stack.undrain(name)
                self.drained_now.remove(name)
            if i < len(names) - 1 and self.cancelled.wait(self.pause):
                return

    def heal(self, stack: StackHandle) -> None:
        names = stack.replica_names()
        for name in list(self.drained_now):
            if name in names and name in stack.drained():
                stack.undrain(name)
            self.drained_now.remove(name)
        for name in names:
            stack.revive_replica(name)
