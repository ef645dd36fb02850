"""Helpers shared by the integration tests."""

from __future__ import annotations

import time
from pathlib import Path

import psutil

from harness.config import AppSpec
from harness.ports import port_open

ROOT = Path(__file__).resolve().parent.parent

TINY = AppSpec(
    command="{python} tests/apps/tiny_app.py --listen {port}",
    env={"TINY_INSTANCE": "{instance}", "TINY_DB": "{database_url}", "TINY_REDIS": "{redis_url}"},
    health_path="/healthz", ready_path="/readyz", cwd=str(ROOT), is_reference=False,
)


def stack_pids(stack) -> set[int]:
    pids = set()
    for server in [stack.postgres, stack.redis, stack.nginx, stack.proxy, *stack.replicas.values()]:
        if server is not None and server.pid:
            proc = psutil.Process(server.pid)
            pids.add(proc.pid)
            pids.update(c.pid for c in proc.children(recursive=True))
    return pids


def assert_nothing_left(pids: set[int], ports: list[int], tmp: Path) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            break
        time.sleep(0.05)
    assert not alive, f"processes left behind: {[psutil.Process(p).cmdline() for p in alive]}"
    assert not [p for p in ports if port_open(p)], "ports still open"
    assert not tmp.exists(), f"temp dir left behind: {tmp}"


