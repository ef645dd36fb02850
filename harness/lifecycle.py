"""The replicas' lifecycle as the supervisor sees it: `replicas.jsonl` in the run directory.

One line per event (schema and judgement in reports/replicas.py): a replica
incarnation started, the harness asked it to stop (and why), it exited (code or
signal, the tail of its log). Written as things happen, one `write` per line, so a
run killed midway still leaves every exit it saw; the report judges the exits again
from this file alone.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

from common.replica_events import EXITED, LOG_TAIL_LINES, REPLICAS_FILE, STARTED, STOPPING

# Signals that pause, resume or notify a process: sending one is not asking it to end.
NON_ENDING_SIGNALS = frozenset({signal.SIGSTOP, signal.SIGCONT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU,
                                signal.SIGWINCH, signal.SIGCHLD, signal.SIGURG})
# Written by ChildProcess.start before each incarnation's output.
_START_MARKER = "--- start "


def incarnation_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last lines the current incarnation wrote: a restarted replica's log holds
    every incarnation, and the earlier ones say nothing about this exit."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 32768))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    found = text.rfind("\n" + _START_MARKER)
    if found >= 0:
        text = text[found + 1:]
    kept = [line for line in text.splitlines() if not line.startswith(_START_MARKER)]
    return kept[-lines:]


class ReplicaLifecycle:
    """Appends lifecycle events; each incarnation's exit is written once, however many
    threads notice it (the monitor, a restart, the teardown)."""

    def __init__(self, run_dir: Path | None) -> None:
        self.path = Path(run_dir) / REPLICAS_FILE if run_dir is not None else None
        self._lock = threading.Lock()
        self._exited: set[tuple[str, str]] = set()
        self._stopping: set[tuple[str, str]] = set()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()  # present from the start: the report knows replicas were supervised

    def _write(self, record: dict) -> None:
        if self.path is None:
            return
        line = json.dumps({"ts": time.time(), **record}) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)

    def started(self, replica: str, ident: str, pid: int | None = None) -> None:
        with self._lock:
            self._write({"replica": replica, "event": STARTED, "id": ident, "pid": pid})

    def stopping(self, replica: str, ident: str, reason: str, signum: int | None = None) -> None:
        """The harness is about to end this incarnation (first request wins)."""
        with self._lock:
            key = (replica, ident)
            if key in self._stopping or key in self._exited:
                return
            self._stopping.add(key)
            self._write({"replica": replica, "event": STOPPING, "id": ident, "reason": reason, "signal": signum})

    def exited(self, replica: str, ident: str, code: int | None, signum: int | None, log_tail: list[str],
               detail: str = "") -> bool:
        """Record an exit; False if this incarnation's exit was written already."""
        with self._lock:
            key = (replica, ident)
            if key in self._exited:
                return False
            self._exited.add(key)
            self._write({"replica": replica, "event": EXITED, "id": ident, "code": code, "signal": signum,
                         "log_tail": log_tail, "detail": detail})
            return True

    def exited_process(self, replica: str, pid: int | None, returncode: int | None, log_path: Path) -> bool:
        """A local process's exit: a negative return code is the signal that ended it."""
        if pid is None:
            return False
        code, signum = (None, -returncode) if returncode is not None and returncode < 0 else (returncode, None)
        return self.exited(replica, str(pid), code, signum, incarnation_tail(log_path))
