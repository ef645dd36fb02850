"""pause: SIGSTOP a replica, a hung instance.

Its sockets stay open and the load balancer still routes to it, so requests and
WebSocket frames stall rather than fail: the failure mode health checks and client
timeouts exist for. Heal is SIGCONT; a process that was stopped is never left stopped.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from chaos.faults.base import state
from chaos.faults.targets import ReplicaFault
from chaos.target import StackHandle, signal_group


@dataclass
class Pause(ReplicaFault):
    kind = "pause"
    summary = "SIGSTOP a replica (hung: connections stay open, nothing answers)"
    heals = "SIGCONT to the paused process"

    pid: int | None = state()

    def inject(self, stack: StackHandle) -> None:
        self.pid = self.running_pid(stack)
        stack.signal_replica(self.target, signal.SIGSTOP)

    def heal(self, stack: StackHandle) -> None:
        # The recorded pid first: by now the replica may have a new process (or none).
        if self.pid is not None:
            signal_group(self.pid, signal.SIGCONT)
        if self.target in stack.replica_names():
            stack.signal_replica(self.target, signal.SIGCONT)
