"""Fixtures for the load side: a real stack (harness), Locust runs as subprocesses.

Locust monkey-patches the whole interpreter with gevent when imported, so the tests
never import it: scenario logic is tested through modules that do not import Locust,
and Locust itself only ever runs in a child process (its own session, killed by
process group on timeout, output to a log file).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # load_support


@dataclass
class LocustResult:
    returncode: int
    log: str
    run_dir: Path

    def records(self, worker: str = "w0") -> Path:
        return self.run_dir / "records" / worker


def start_locust(args: list[str], cwd: Path, env: dict[str, str] | None, log, scenario: str = "ramp.py"):
    """Start `locust -f scenarios/<scenario> <args>` in its own session (the caller reaps it)."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("GAUNTLET_RUN_DIR", None)
    cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "scenarios" / scenario), *args]
    if "--run-dir" not in args:
        cmd += ["--run-dir", str(cwd / "run")]
    return subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def run_locust(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 90.0,
               scenario: str = "ramp.py", log_name: str = "locust.log", signal_after: tuple[float, int] | None = None
               ) -> LocustResult:
    """Run locust to completion (or kill it at the deadline). `signal_after=(seconds, sig)`
    sends `sig` to its process group first, as Ctrl-C in a terminal or a supervisor would."""
    log_path = cwd / log_name
    run_dir = cwd / "run"
    with open(log_path, "wb") as log:
        proc = start_locust(args, cwd, env, log, scenario)
        try:
            if signal_after is not None:
                try:
                    proc.wait(timeout=signal_after[0])
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal_after[1])
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            raise AssertionError(f"locust did not finish within {timeout}s; log:\n{log_path.read_text()[-3000:]}")
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
    return LocustResult(code, log_path.read_text(errors="replace"), run_dir)


@pytest.fixture(scope="module")
def load_stack(tmp_path_factory):
    """Two reference-SUT replicas behind the LB, Redis broker, real Postgres/Redis."""
    from harness.spec import StackSpec
    from harness.stack import LocalStack

    base = tmp_path_factory.mktemp("stack")
    stack = LocalStack(StackSpec(replicas=2, broker="redis", runs_dir=base / "runs",
                                 state_path=base / "stack.json", fault_proxies=False))
    try:
        stack.up()
        yield stack, base / "stack.json"
    finally:
        stack.down()


@pytest.fixture
def locust_env(load_stack):
    stack, state_path = load_stack
    return {"GAUNTLET_STATE": str(state_path)}


def wait_until(predicate, timeout: float, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
