"""pause: SIGSTOP a replica, a hung instance.

Its sockets stay open and the load balancer still routes to it, so requests and
WebSocket frames stall rather than fail: the failure mode health checks and client
timeouts exist for. Heal is SIGCONT; a process that was stopped is never left stopped.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from chaos.faults.base import Fault, FaultError, state
from chaos.faults.targets import REPLICA_HELP, replica_target
from chaos.target import StackHandle, Topology, signal_group


@dataclass
class Pause(Fault):
    kind = "pause"
    summary = "SIGSTOP a replica (hung: connections stay open, nothing answers)"
    heals = "SIGCONT to the paused process"
    target_help = REPLICA_HELP

    pid: int | None = state()

    @classmethod
    def resolve_target(cls, target: str, topology: Topology) -> str:
        return replica_target(target, topology)

    def footprint(self, topology: Topology) -> frozenset[str]:
        return frozenset({f"replica:{self.target}"})

    def inject(self, stack: StackHandle) -> None:
        self.pid = stack.replica_pid(self.target)
        if self.pid is None:
            raise FaultError(f"pause {self.target}: the replica is not running")
        stack.signal_replica(self.target, signal.SIGSTOP)

    def heal(self, stack: StackHandle) -> None:
        # The recorded pid first: by now the replica may have a new process (or none).
        if self.pid is not None:
            signal_group(self.pid, signal.SIGCONT)
        if self.target in stack.replica_names():
            stack.signal_replica(self.target, signal.SIGCONT)
