"""terminate: SIGTERM a replica, the graceful stop a deploy or a scale-in sends.

The app decides how long it takes (closing sockets with 1001, finishing requests);
one that ignores SIGTERM simply keeps running, which is a finding, not a failed fault.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from chaos.faults.replica_stop import ReplicaStop


@dataclass
class Terminate(ReplicaStop):
    kind = "terminate"
    summary = "SIGTERM a replica (graceful shutdown: sockets should close with 1001)"
    heals = "starts the replica again if it has exited; restores the restart policy"
    signum = signal.SIGTERM
