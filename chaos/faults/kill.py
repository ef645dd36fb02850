"""kill: SIGKILL a replica, a crash with no chance to close sockets or flush anything."""

from __future__ import annotations

import signal
from dataclasses import dataclass

from chaos.faults.replica_stop import ReplicaStop


@dataclass
class Kill(ReplicaStop):
    kind = "kill"
    summary = "SIGKILL a replica (a crash: open WebSockets drop without a close frame)"
    heals = "starts the replica again if it is still dead; restores the restart policy"
    signum = signal.SIGKILL
    confirm_exit = 5.0  # SIGKILL cannot be ignored: not gone in 5s means we signalled the wrong thing
