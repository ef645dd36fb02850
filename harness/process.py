"""Child process supervision: start, wait for readiness under a deadline, stop by group.

Every child runs in its own session (so a TERM/KILL reaches its whole process group,
e.g. nginx workers or Postgres backends), writes stdout+stderr to a log file (never an
unread pipe), and is reaped by whoever started it. The kill policy is an argument:
TERM, wait `grace`, then KILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


class StartError(Exception):
    """A child failed to become ready; the message carries the tail of its log."""


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 8192))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    tail = text.splitlines()[-lines:]
    return "\n".join("    " + line for line in tail) or "    (log is empty)"


@dataclass
class KillPolicy:
    """How a child is stopped: `signal` first, then KILL after `grace` seconds."""

    signal: int = signal.SIGTERM
    grace: float = 5.0


class ChildProcess:
    """One supervised child. Not thread-safe by itself; the stack serialises access."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike | None = None,
        user: str | None = None,
        kill_policy: KillPolicy | None = None,
        on_start: Callable[["ChildProcess"], None] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self.env = env
        self.cwd = cwd
        self.user = user
        self.kill_policy = kill_policy or KillPolicy()
        # Called as soon as the child exists (the stack hands it to the reaper at once,
        # not after the start that may still be waiting when the harness is killed).
        self.on_start = on_start
        self.popen: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Append: a restarted child keeps its earlier log, separated by a marker.
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {time.strftime('%H:%M:%S')} {' '.join(self.argv)}\n".encode())
            log.flush()
            try:
                self.popen = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    user=self.user,
                    start_new_session=True,
                )
            except OSError as exc:
                raise StartError(f"{self.name}: cannot run {self.argv[0]!r}: {exc.strerror}") from None
        if self.on_start is not None:
            self.on_start(self)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def returncode(self) -> int | None:
        return self.popen.poll() if self.popen else None

    def wait_ready(self, check: Callable[[], bool], deadline: float, what: str = "ready") -> None:
        """Poll `check` until it returns True or `deadline` (time.monotonic()) passes.

        Fails at once, with the log tail, if the child exits while we wait.
        """
        delay = 0.02
        while True:
            if not self.alive():
                raise StartError(
                    f"{self.name} exited with code {self.returncode()} before it was {what}; "
                    f"log {self.log_path}:\n{log_tail(self.log_path)}"
                )
            try:
                if check():
                    return
            except Exception:  # a readiness probe failing is the normal "not yet"
                pass
            if time.monotonic() >= deadline:
                raise StartError(
                    f"{self.name} was not {what} in time; log {self.log_path}:\n{log_tail(self.log_path)}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)

    def signal(self, signum: int) -> None:
        """Send a signal to the child's whole process group."""
        if self.alive():
            try:
                os.killpg(self.popen.pid, signum)
            except ProcessLookupError:
                pass

    def stop(self, policy: KillPolicy | None = None) -> int | None:
        """Stop and reap. Returns the exit code. Safe to call twice."""
        if self.popen is None:
            return None
        policy = policy or self.kill_policy
        if self.popen.poll() is None:
            self.signal(policy.signal)
            try:
                self.popen.wait(timeout=policy.grace)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait(timeout=5)
        # The leader is gone; stragglers in its group (workers, backends) go too.
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return self.popen.returncode
