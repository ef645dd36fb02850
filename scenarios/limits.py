"""The load process's open-file limit: one descriptor per WebSocket.

Many systems start a process with a soft limit of 1,024 under a much higher hard
limit; a process may raise its own soft limit to the hard one without privileges.
`gauntlet run` raises it before it starts Locust (harness/servers/limits.py); a load
started by hand (`locust -f scenarios/...`) raises it here, in every process, before
any user connects. Locust's `--processes` workers are forks and inherit it.
"""

from __future__ import annotations

import resource


def raise_open_files() -> tuple[int, int]:
    """Soft open-file limit up to the hard one; returns (soft, hard) now in force.
    A limit that cannot be raised stays as it is (the connects that fail say why)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)
