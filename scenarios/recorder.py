"""Raw load records (DESIGN contract 2): one CSV per record kind per load process.

Rows are tuples appended to a per-kind list (the hot path is one `list.append`). A
kind's rows are written as one block when `batch` of them are waiting, and one flusher
greenlet writes whatever waits every second; every block goes to the OS at once. So
memory stays bounded on long runs, a killed process loses at most its last unwritten
batch, and recording costs a few microseconds per row (see bench/load_bench.py).
Writes never yield to gevent, so blocks from different greenlets cannot interleave. Column lists come from
`common/records.py`, the one definition the readers use too.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
from gevent.event import Event

from common.records import KINDS

RUN_DIR_ENV = "GAUNTLET_RUN_DIR"
FLUSH_INTERVAL = 1.0


def new_run_dir(scenario: str, base: Path = Path("runs"), now: float | None = None) -> Path:
    """`runs/<YYYYmmdd-HHMMSS>-<scenario>`, made unique if a run started the same second."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now if now is not None else time.time()))
    candidate = base / f"{stamp}-{scenario}"
    n = 2
    while candidate.exists():
        candidate = base / f"{stamp}-{scenario}-{n}"
        n += 1
    return candidate


def resolve_run_dir(explicit: str, scenario: str, stack_run_dir: str = "") -> Path:
    """--run-dir, else $GAUNTLET_RUN_DIR, else the target stack's run directory while no
    load has recorded there, else a new runs/<time>-<scenario>.

    A second load against the same stack gets a directory of its own: its message keys
    and subscriber ids start again at 1, and in one directory they would read as
    duplicates of the first load's."""
    if explicit:
        return Path(explicit).resolve()
    env = os.environ.get(RUN_DIR_ENV)
    if env:
        return Path(env).resolve()
    if stack_run_dir and Path(stack_run_dir).is_dir() and not (Path(stack_run_dir) / "records").exists():
        return Path(stack_run_dir)
    return new_run_dir(scenario).resolve()


class CsvSink:
    """One record kind's CSV file. `append(row)` queues a tuple in column order."""

    def __init__(self, path: Path, columns: tuple[str, ...], batch: int) -> None:
        self.path = path
        self.columns = columns
        self.batch = batch
        self.rows: list[tuple] = []
        self.written = 0
        new = not path.exists() or path.stat().st_size == 0
        self.appending = not new
        self._fh = open(path, "a", newline="", encoding="utf-8")
        if new:
            self._fh.write(",".join(columns) + "\r\n")
            self._fh.flush()

    def append(self, row: tuple) -> None:
        rows = self.rows
        rows.append(row)
        if len(rows) >= self.batch:
            self.flush()

    def flush(self) -> int:
        if not self.rows or self._fh.closed:
            return 0
        rows, self.rows = self.rows, []
        buf = io.StringIO()
        csv.writer(buf).writerows(rows)
        # One write of the whole block, then to the OS: a SIGKILL after this loses nothing.
        self._fh.write(buf.getvalue())
        self._fh.flush()
        self.written += len(rows)
        return len(rows)

    def close(self) -> None:
        if not self._fh.closed:
            self.flush()
            self._fh.close()


@dataclass(frozen=True)
class RecorderInfo:
    worker: str
    directory: Path


class Recorder:
    """The records of one load process, in `<run_dir>/records/<worker>/`."""

    def __init__(self, directory: Path, worker: str, batch: int = 2000, meta: dict[str, Any] | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.worker = worker
        self._stop = Event()
        self.sinks: dict[str, CsvSink] = {
            kind: CsvSink(directory / f"{kind}.csv", columns, batch) for kind, columns in KINDS.items()
        }
        # Bound methods for the hot paths: `recorder.recv(row)` is one call.
        self.http = self.sinks["http"].append
        self.pub = self.sinks["pub"].append
        self.recv = self.sinks["recv"].append
        self.conn = self.sinks["conn"].append
        self.users = self.sinks["users"].append
        self.loadgen = self.sinks["loadgen"].append
        self.hostile = self.sinks["hostile"].append
        # Records already there: a second test from the web UI, or a reused run directory.
        self.appending = any(sink.appending for sink in self.sinks.values())
        self._flusher: gevent.Greenlet | None = None
        self.closed = False
        if meta is not None:
            self.write_meta(meta)

    def write_meta(self, meta: dict[str, Any]) -> None:
        (self.directory / "meta.json").write_text(json.dumps({"worker": self.worker, **meta}, indent=2) + "\n")

    def start(self) -> None:
        """Start the one flusher greenlet (idempotent)."""
        if self._flusher is None or self._flusher.dead:
            self._flusher = gevent.spawn(self._flush_loop)

    def _flush_loop(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL):
            self.flush()

    def flush(self) -> int:
        return sum(sink.flush() for sink in self.sinks.values())

    def counts(self) -> dict[str, int]:
        return {kind: sink.written + len(sink.rows) for kind, sink in self.sinks.items()}

    def close(self) -> None:
        """Write everything and close the files; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        for sink in self.sinks.values():
            sink.close()
        self._stop.set()
        if self._flusher is not None and self._flusher is not gevent.getcurrent():
            self._flusher.kill(block=False)
        self._flusher = None
