"""restart: stop a replica and start it again on the same port (a redeploy of one instance)."""

from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.base import FaultError, choice_param
from chaos.faults.targets import ReplicaFault
from chaos.target import StackHandle, Topology


@dataclass
class Restart(ReplicaFault):
    kind = "restart"
    summary = "restart a replica (SIGTERM, or SIGKILL with mode=hard) and wait until it is ready"
    heals = "nothing to undo; starts the replica if the restart left it dead"
    sustained = False

    mode: str = choice_param("graceful", "graceful: SIGTERM and wait; hard: SIGKILL", ("graceful", "hard"))

    def nominal_seconds(self, topology: Topology) -> float:
        return 5.0

    def inject(self, stack: StackHandle) -> None:
        if self.target not in stack.replica_names():
            raise FaultError(f"restart {self.target}: no such replica")
        stack.restart_replica(self.target, graceful=self.mode == "graceful")

    def heal(self, stack: StackHandle) -> None:
        stack.revive_replica(self.target)  # only if dead, and not one scaled in meanwhile
