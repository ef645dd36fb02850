"""Open-file limits: what the stack's processes may hold, and how nginx is sized by it.

Every socket is a file descriptor, so the open-file limit (RLIMIT_NOFILE) is the
first wall at thousands of WebSockets: many systems start processes with a soft limit
of 1,024 under a hard limit ten or a thousand times higher. A process may raise its
own soft limit up to the hard one without privileges, and children inherit both, so
the harness raises its own before it starts anything: Postgres, Redis, the replicas,
nginx's master and the load generator all start with soft = hard.

nginx's workers set their own limit (`worker_rlimit_nofile`) and count client and
upstream connections alike against `worker_connections`: one proxied WebSocket is
two connections and two descriptors in one worker.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

# Descriptors a worker keeps for itself: logs, listeners, the channel to its master,
# temp files of buffered bodies.
WORKER_RESERVE = 64
# Without a limit to read (RLIM_INFINITY), take it as this.
UNLIMITED_CAP = 1 << 20
# An nginx worker allocates a slot (~0.5 KB) per worker_connection when it starts:
# 65,536 is 32,000 WebSockets per worker, far past what one machine's replicas hold.
WORKER_CAP = 65_536


@dataclass(frozen=True)
class OpenFiles:
    soft: int
    hard: int


def _finite(value: int) -> int:
    return UNLIMITED_CAP if value == resource.RLIM_INFINITY else value


def open_files() -> OpenFiles:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return OpenFiles(_finite(soft), _finite(hard))


def raise_open_files() -> OpenFiles:
    """Raise this process's soft open-file limit to its hard limit (children inherit
    it); returns the limits now in force. Never fails: a limit it cannot change stays."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard and (hard == resource.RLIM_INFINITY or soft < hard):
        target = hard
        if hard == resource.RLIM_INFINITY:
            # Linux refuses a soft limit above fs.nr_open even when the hard one is infinite.
            target = _nr_open()
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return open_files()


def _nr_open() -> int:
    try:
        with open("/proc/sys/fs/nr_open") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return UNLIMITED_CAP


@dataclass(frozen=True)
class NginxLimits:
    """`worker_rlimit_nofile` and `worker_connections` for the load balancer."""

    rlimit_nofile: int
    worker_connections: int

    @property
    def websockets_per_worker(self) -> int:
        return self.worker_connections // 2


def nginx_limits(limits: OpenFiles | None = None) -> NginxLimits:
    """As many connections per worker as its descriptors allow, within the hard limit
    (capped: nginx allocates every connection slot when a worker starts)."""
    limits = limits or open_files()
    nofile = max(1024, min(limits.hard, WORKER_CAP))
    return NginxLimits(nofile, nofile - WORKER_RESERVE)
