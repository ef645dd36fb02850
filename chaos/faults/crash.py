"""crash: SIGKILL a dependency's real server process (Postgres or Redis).

Unlike `down` (the proxy refuses connections), the server itself dies: every
connection breaks at once, in-flight transactions are lost, and the server comes back
with its data dir (Postgres runs crash recovery; Redis replays its append-only file).
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.base import Fault
from chaos.faults.targets import dependency_target
from chaos.target import StackHandle, Topology


@dataclass
class Crash(Fault):
    kind = "crash"
    summary = "SIGKILL the Postgres or Redis server (all replicas lose it at once)"
    heals = "starts the server again on the same port with the same data"
    target_help = "postgres, redis or broker"

    @classmethod
    def resolve_target(cls, target: str, topology: Topology) -> str:
        return dependency_target(target, topology, per_replica=False)

    def footprint(self, topology: Topology) -> frozenset[str]:
        return frozenset({f"server:{self.target}"})

    def inject(self, stack: StackHandle) -> None:
        stack.crash_dependency(self.target)

    def heal(self, stack: StackHandle) -> None:
        stack.restart_dependency(self.target)  # does nothing to a server that is running
