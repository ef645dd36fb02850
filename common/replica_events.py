"""The schema of `replicas.jsonl`, the supervisor's record of each replica's lifecycle:
the single source for the writer (harness/lifecycle.py) and the check
(reports/replicas.py), in the bottom package both may import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPLICAS_FILE = "replicas.jsonl"
STARTED, STOPPING, EXITED = "started", "stopping", "exited"
EVENTS = (STARTED, STOPPING, EXITED)
# Why the harness stopped a replica (`stopping` reason).
TEARDOWN, RESTART, REMOVE, SIGNAL, STOP = "teardown", "restart", "remove", "signal", "stop"
# An exit a little after its fault's recorded end is still the fault's: the heal runs
# first and the supervisor notices an exit on its next poll.
FAULT_SLACK_S = 5.0
LOG_TAIL_LINES = 20


@dataclass(frozen=True)
class LifecycleEvent:
    ts: float
    replica: str
    event: str
    id: str
    pid: int | None = None
    reason: str = ""
    signal: int | None = None
    code: int | None = None
    log_tail: tuple[str, ...] = ()
    detail: str = ""

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> LifecycleEvent:
        event = str(raw["event"])
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}")

        def opt_int(key: str) -> int | None:
            value = raw.get(key)
            return None if value is None else int(value)

        return cls(ts=float(raw["ts"]), replica=str(raw["replica"]), event=event, id=str(raw.get("id", "")),
                   pid=opt_int("pid"), reason=str(raw.get("reason") or ""), signal=opt_int("signal"),
                   code=opt_int("code"), log_tail=tuple(str(x) for x in raw.get("log_tail") or ()),
                   detail=str(raw.get("detail") or ""))


def read_events(path: Path) -> tuple[list[LifecycleEvent], list[str]]:
    """The events in file order; a torn or foreign line is skipped with a warning."""
    events, warnings = [], []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            events.append(LifecycleEvent.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            warnings.append(f"{path.name} line {number} skipped: {exc}")
    return events, warnings
