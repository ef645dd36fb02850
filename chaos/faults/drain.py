"""drain: take a replica out of the load balancer, as a deploy does before stopping it.

The replica keeps running and keeps its open WebSockets; only new connections and
requests go elsewhere. A broker that fans out correctly still delivers to its sockets.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.base import FaultError
from chaos.faults.targets import ReplicaFault
from chaos.target import StackHandle


@dataclass
class Drain(ReplicaFault):
    kind = "drain"
    summary = "take a replica out of the nginx upstream (it keeps running and keeps its sockets)"
    heals = "puts the replica back into the upstream"

    def inject(self, stack: StackHandle) -> None:
        names = stack.replica_names()
        if self.target not in names:
            raise FaultError(f"drain {self.target}: no such replica")
        if not set(names) - stack.drained() - {self.target}:
            raise FaultError(f"drain {self.target}: it is the last replica in the load balancer")
        stack.drain(self.target)

    def heal(self, stack: StackHandle) -> None:
        if self.target in stack.drained():
            stack.undrain(self.target)
