"""What `kill` and `terminate` share: a replica process ends, and heal brings it back.

Platforms restart a dead instance after a delay; `restart_after` switches that restart
policy on for the duration of the fault (the supervisor then restarts the replica by
itself), and heal puts the stack's previous policy back. Whatever the policy did, heal
starts the replica again if it is still dead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

from chaos.faults.base import FaultError, duration_param, state
from chaos.faults.targets import ReplicaFault
from chaos.target import StackHandle


@dataclass
class ReplicaStop(ReplicaFault):
    signum: ClassVar[int]
    confirm_exit: ClassVar[float] = 0.0  # seconds to wait until the process is gone

    restart_after: float | None = duration_param(
        None, "restart policy while active: the supervisor restarts the dead replica after this delay "
              "(default: the stack's own policy)", optional=True, maximum=3600)
    pid: int | None = state()
    policy_set: bool = state(False)
    previous_policy: float | None = state()

    def inject(self, stack: StackHandle) -> None:
        self.pid = self.running_pid(stack)
        if self.restart_after is not None:
            self.previous_policy = stack.restart_delay()
            self.policy_set = True
            stack.set_restart_delay(self.restart_after)
        stack.signal_replica(self.target, self.signum)
        if not self.confirm_exit:
            return
        deadline = time.monotonic() + self.confirm_exit
        while stack.replica_pid(self.target) == self.pid:
            if time.monotonic() > deadline:
                raise FaultError(f"{self.kind} {self.target}: pid {self.pid} still running "
                                 f"{self.confirm_exit:.0f}s after the signal")
            time.sleep(0.05)

    def heal(self, stack: StackHandle) -> None:
        if self.policy_set:
            stack.set_restart_delay(self.previous_policy)
            self.policy_set = False
        stack.revive_replica(self.target)  # only if dead, and not one scaled in meanwhile
