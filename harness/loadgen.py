"""The load generator as a child process: Locust headless, writing into a run directory.

Used by `gauntlet run` and by the pytest plugin. Locust runs in its own session so
its `--processes` workers stop with it; TERM asks it to stop users, drain publishes
and write its records; KILL follows if it does not within the grace.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.process import ChildProcess, KillPolicy, log_tail

# Locust exits 0, or 1 when requests failed (a verdict is ours to give, not Locust's).
NORMAL_EXITS = (0, 1)


class LoadError(Exception):
    """The load generator failed to run (bad arguments, crashed); carries its log tail."""


@dataclass
class LoadPlan:
    scenario: Path
    host: str
    run_dir: Path
    state_file: Path
    seed: int
    stages: str | None = None
    cut: float | None = None  # -t: stop before the stages end
    processes: int = 1
    allow_remote: bool = False
    extra: list[str] = field(default_factory=list)

    def argv(self) -> list[str]:
        argv = [
            sys.executable, "-m", "locust", "-f", str(self.scenario), "--headless",
            "--host", self.host, "--state", str(self.state_file), "--run-dir", str(self.run_dir),
            "--seed", str(self.seed), "--csv", str(self.run_dir / "locust"), "--csv-full-history",
            "--loglevel", "INFO", "--exit-code-on-error", "0",
        ]
        if self.stages:
            argv += ["--stages", self.stages]
        if self.cut:
            argv += ["-t", f"{max(1, round(self.cut))}s"]
        if self.processes > 1:
            argv += ["--processes", str(self.processes)]
        if self.allow_remote:
            argv.append("--allow-remote")
        return argv + list(self.extra)


class LoadProcess:
    def __init__(self, plan: LoadPlan, stop_grace: float = 60.0) -> None:
        self.plan = plan
        self.log_path = plan.run_dir / "logs" / "locust.log"
        self.child = ChildProcess("locust", plan.argv(), self.log_path,
                                  kill_policy=KillPolicy(signal.SIGTERM, stop_grace))
        self.started = 0.0

    def start(self) -> float:
        self.child.start()
        self.started = time.time()
        return self.started

    def running(self) -> bool:
        return self.child.alive()

    def wait(self, timeout: float) -> int | None:
        """Wait up to `timeout` for Locust to finish on its own; None if it is still running."""
        try:
            return self.child.popen.wait(timeout=max(0.0, timeout))
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> int | None:
        """Ask Locust to stop (it drains and writes its records), KILL after the grace."""
        return self.child.stop()

    def check(self) -> None:
        code = self.child.returncode()
        if code is not None and code not in NORMAL_EXITS and code != -signal.SIGTERM:
            raise LoadError(f"the load generator failed (exit {code}); {self.log_path}:\n{log_tail(self.log_path)}")
