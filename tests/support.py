"""Helpers shared by the integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psutil

from harness.config import AppSpec
from harness.ports import port_open

ROOT = Path(__file__).resolve().parent.parent

T = TypeVar("T")

TINY = AppSpec(
    command="{python} tests/apps/tiny_app.py --listen {port}",
    env={"TINY_INSTANCE": "{instance}", "TINY_DB": "{database_url}", "TINY_REDIS": "{redis_url}"},
    health_path="/healthz", ready_path="/readyz", cwd=str(ROOT), is_reference=False,
)


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll `predicate` until it returns something truthy and return that, or fail naming
    `what`. It is asked once more after the deadline, so a slow last poll still counts."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def stop_process(process: subprocess.Popen, grace: float = 5.0) -> int:
    """TERM the process group (the child was started with start_new_session=True), wait
    `grace` seconds, then KILL it. Returns the exit code."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            return process.wait(grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return process.wait(grace)
    return process.returncode


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


