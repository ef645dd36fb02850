"""restart: stop a replica and start it again on the same port (a redeploy of one instance)."""

from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.base import Fault, FaultError, choice_param
from chaos.faults.targets import REPLICA_HELP, replica_target
from chaos.target import StackHandle, Topology


@dataclass
class Restart(Fault):
    kind = "restart"
    summary = "restart a replica (SIGTERM, or SIGKILL with mode=hard) and wait until it is ready"
    heals = "nothing to undo; starts the replica if the restart left it dead"
    target_help = REPLICA_HELP
    sustained = False

    mode: str = choice_param("graceful", "graceful: SIGTERM and wait; hard: SIGKILL", ("graceful", "hard"))

    @classmethod
    def resolve_target(cls, target: str, topology: Topology) -> str:
        return replica_target(target, topology)

    def footprint(self, topology: Topology) -> frozenset[str]:
        return frozenset({f"replica:{self.target}"})

    def nominal_seconds(self, topology: Topology) -> float:
        return 5.0

    def inject(self, stack: StackHandle) -> None:
        if self.target not in stack.replica_names():
            raise FaultError(f"restart {self.target}: no such replica")
        stack.restart_replica(self.target, graceful=self.mode == "graceful")

    def heal(self, stack: StackHandle) -> None:
        if self.target in stack.replica_names():
            stack.revive_replica(self.target)
