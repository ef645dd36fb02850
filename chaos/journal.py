"""The fault journal: `faults.jsonl` in the run directory (DESIGN contract 3).

One JSON object per line. A fault's record is written when it is injected
(`end: null`, outcome `active`), may be rewritten once inject has learned what it
touched (so that another process can heal it), and is written a last time when it is
healed. Readers keep the last line per `id`:

    {"id": "f3", "kind": "partition", "target": "r2", "params": {"dependency": "redis"},
     "start": 1763900010.2, "end": 1763900020.3, "outcome": "ok", "error": null}

Several processes may append to one journal (`gauntlet run` playing a timeline while
someone runs `gauntlet chaos kill r2` against the same stack), so appends and id
allocation hold an exclusive `flock` on the file, and each line is written with one
`write` call.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

JOURNAL_NAME = "faults.jsonl"
INTERRUPTED = "interrupted"  # the run died while the fault was active; its teardown ended it
OUTCOMES = ("active", "ok", "inject_failed", "heal_failed", INTERRUPTED)
_ID = re.compile(r"^f(\d+)$")


@dataclass(frozen=True)
class FaultRecord:
    id: str
    kind: str
    target: str
    params: dict[str, Any] = field(default_factory=dict)
    start: float = 0.0
    end: float | None = None
    outcome: str = "active"
    error: str | None = None

    @property
    def active(self) -> bool:
        return self.outcome == "active"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "FaultRecord":
        return cls(id=str(raw["id"]), kind=str(raw["kind"]), target=str(raw.get("target", "")),
                   params=dict(raw.get("params") or {}), start=float(raw["start"]),
                   end=None if raw.get("end") is None else float(raw["end"]),
                   outcome=str(raw.get("outcome", "active")), error=raw.get("error"))


def journal_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / JOURNAL_NAME


class Journal:
    """Append-only writer; safe across threads and processes."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    @classmethod
    def in_run_dir(cls, run_dir: str | os.PathLike) -> "Journal":
        return cls(journal_path(run_dir))

    def _locked_append(self, make_line) -> FaultRecord:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path, "a+", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                record = make_line(fh)
                fh.write(json.dumps(record.to_json(), default=_jsonable) + "\n")
                fh.flush()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return record

    def open(self, kind: str, target: str, params: dict[str, Any], start: float | None = None) -> FaultRecord:
        """Write a new active record; its id (`f1`, `f2`, ...) is unique in this journal."""
        def make(fh) -> FaultRecord:
            fh.seek(0)
            highest = 0
            for line in fh:
                try:
                    match = _ID.match(str(json.loads(line).get("id", "")))
                except (ValueError, AttributeError):
                    continue  # a torn or foreign line must not stop fault injection
                if match:
                    highest = max(highest, int(match.group(1)))
            return FaultRecord(f"f{highest + 1}", kind, target, dict(params),
                               time.time() if start is None else start)
        return self._locked_append(make)

    def update(self, record: FaultRecord, **changes: Any) -> FaultRecord:
        """Write the record again with changes (same id: the new line wins)."""
        new = replace(record, **changes)
        if new.outcome not in OUTCOMES:
            raise ValueError(f"unknown fault outcome {new.outcome!r}")
        return self._locked_append(lambda fh: new)

    def close(self, record: FaultRecord, outcome: str, error: str | None = None,
              params: dict[str, Any] | None = None, end: float | None = None) -> FaultRecord:
        changes: dict[str, Any] = {"outcome": outcome, "error": error, "end": time.time() if end is None else end}
        if params is not None:
            changes["params"] = dict(params)
        return self.update(record, **changes)


def read_journal(path: str | os.PathLike) -> list[FaultRecord]:
    """Every fault in the journal, merged by id (last line wins), in order of first appearance.

    A missing journal is an empty one; a torn last line (a writer killed mid-write) is skipped.
    """
    records: dict[str, FaultRecord] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = FaultRecord.from_json(json.loads(line))
        except (ValueError, KeyError, TypeError):
            continue
        records[record.id] = record
    return list(records.values())


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {value!r}")
