"""The load generator as a child process: Locust headless, writing into a run directory.

Used by `gauntlet run` and by the pytest plugin. Locust runs in its own session so
its `--processes` workers stop with it; TERM asks it to stop users, drain publishes
and write its records; KILL follows if it does not within the grace.
"""

from __future__ import annotations

import functools
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.ports import LOOPBACK, free_port
from harness.process import ChildProcess, KillPolicy, log_tail
from harness.servers.limits import raise_open_files

# Locust exits 0, or 1 when requests failed (a verdict is ours to give, not Locust's).
NORMAL_EXITS = (0, 1)


class LoadError(Exception):
    """The load generator failed to run (bad arguments, crashed); carries its log tail."""


# What `gauntlet run` sets itself; in --locust-args they would fight its own options.
RESERVED_ARGS = {
    "-f": "the scenario argument", "--locustfile": "the scenario argument", "-H": "the stack", "--host": "the stack",
    "--headless": "gauntlet run", "--run-dir": "gauntlet run", "--state": "gauntlet run", "--csv": "gauntlet run",
    "--seed": "--seed", "--stages": "--stages", "-t": "--duration", "--run-time": "--duration",
    "--processes": "--processes", "--master": "--processes", "--worker": "--processes",
    "--master-bind-host": "--processes", "--master-bind-port": "--processes", "--allow-remote": "--allow-remote",
}
CHECK_TIMEOUT = 120.0


def check_load_args(scenario: Path, args: list[str]) -> None:
    """Parse the load generator's extra arguments as Locust will (in a child, since
    importing Locust patches this process for gevent); ValueError with one line if bad."""
    for arg in args:
        flag = arg.split("=", 1)[0]
        if flag in RESERVED_ARGS:
            raise ValueError(f"--locust-args: {flag} is set by gauntlet run; use {RESERVED_ARGS[flag]} instead")
    _check_cached(str(scenario), tuple(args))


@functools.lru_cache(maxsize=32)
def _check_cached(scenario: str, args: tuple[str, ...]) -> None:
    try:
        done = subprocess.run([sys.executable, "-m", "scenarios.check", scenario, "--headless", *args],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=CHECK_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ValueError(f"--locust-args: checking them took more than {CHECK_TIMEOUT:g}s") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        message = lines[-1].removeprefix("gauntlet: error: ") if lines else f"exit {done.returncode}"
        where = "--locust-args" if args else scenario
        raise ValueError(f"{where}: {message}")


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
    # The project config the stack's app came from: the load generator reads its [load]
    # table from this file, wherever the command was started ("" = the reference SUT).
    config: str = ""
    master_port: int = field(default_factory=free_port)

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
            # Its own port (two runs at once must not meet on Locust's default 5557), on
            # loopback: the workers are this machine's forks.
            argv += ["--processes", str(self.processes), "--master-bind-host", LOOPBACK,
                     "--master-bind-port", str(self.master_port), "--master-port", str(self.master_port)]
        if self.allow_remote:
            argv.append("--allow-remote")
        if self.config:
            argv += ["--gauntlet-config", self.config]
        return argv + list(self.extra)


class LoadProcess:
    def __init__(self, plan: LoadPlan, stop_grace: float = 60.0) -> None:
        self.plan = plan
        self.log_path = plan.run_dir / "logs" / "locust.log"
        self.child = ChildProcess("locust", plan.argv(), self.log_path,
                                  kill_policy=KillPolicy(signal.SIGTERM, stop_grace))
        self.started = 0.0

    def start(self) -> float:
        raise_open_files()  # inherited by Locust and its --processes workers
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
