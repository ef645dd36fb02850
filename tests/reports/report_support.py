"""Helpers for the reports tests: a run directory written row by row."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from reports.records import KINDS

T0 = 1_700_000_000.0


class MiniRun:
    """A run directory written row by row; times are seconds after T0."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.rows: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        self.fault_lines: list[dict[str, Any]] = []
        self.meta: dict[str, Any] = {"name": "mini", "seed": 1, "start": T0, "end": T0 + 60}
        self.next_id = 1

    def connect(self, sub: str, user: str, at: float, instance: str = "r1", conn: int = 1,
                until: float | None = None, detail: str | None = None) -> MiniRun:
        self.rows["conn"].append({"ts": T0 + at, "sub": sub, "user": user, "conn": conn, "event": "connect",
                                  "instance": instance, "detail": detail})
        if until is not None:
            self.rows["conn"].append({"ts": T0 + until, "sub": sub, "user": user, "conn": conn,
                                      "event": "disconnect", "instance": instance, "code": 1006})
        return self

    def publish(self, key: str, at: float, user: str | None = None, outcome: str = "ok", instance: str = "r1",
                ack_after: float = 0.02, id: int | None = None) -> int | None:
        msg_id = id if id is not None else (self.next_id if outcome != "fail" else None)
        if msg_id is not None and id is None:
            self.next_id += 1
        self.rows["pub"].append({
            "key": key, "kind": "user" if user else "broadcast", "user": user, "ts_intended": T0 + at,
            "ts_sent": T0 + at, "ts_ack": None if outcome == "unknown" else T0 + at + ack_after,
            "outcome": outcome, "status": {"ok": 201, "fail": 503}.get(outcome),
            "id": msg_id if outcome == "ok" else None, "instance": instance if outcome == "ok" else None,
        })
        self._ids = getattr(self, "_ids", {})
        self._ids[key] = (msg_id, at, instance)
        return msg_id

    def recv(self, sub: str, user: str, key: str | None, at: float, instance: str = "r1", conn: int = 1,
             replay: bool = False, origin: str | None = None, id: int | None = None,
             intact: bool | None = None) -> MiniRun:
        known = getattr(self, "_ids", {}).get(key, (None, at - 0.01, "r1"))
        self.rows["recv"].append({
            "ts": T0 + at, "sub": sub, "user": user, "conn": conn, "instance": instance, "key": key,
            "id": id if id is not None else known[0], "origin": origin or known[2],
            "sent_ts": T0 + known[1], "replay": 1 if replay else 0,
            "intact": None if intact is None else int(intact),
        })
        return self

    def hostile(self, at: float, kind: str = "read-forged", outcome: str = "refused", status: int | None = 401,
                request: str = "GET /api/notifications", transport: str = "http", user: str = "u1") -> MiniRun:
        self.rows["hostile"].append({"ts": T0 + at, "kind": kind, "transport": transport, "request": request,
                                     "user": user, "status": status, "outcome": outcome, "detail": "test"})
        return self

    def http(self, at: float, name: str, dur_ms: float, ok: bool = True, status: int | None = 200,
             instance: str | None = "r1") -> MiniRun:
        self.rows["http"].append({"ts": T0 + at, "name": name, "method": name.split()[0], "status": status,
                                  "dur_ms": dur_ms, "ok": 1 if ok else 0, "instance": instance})
        return self

    def fault(self, fid: str, kind: str, target: str, start: float, end: float | None,
              outcome: str = "ok") -> MiniRun:
        base = {"id": fid, "kind": kind, "target": target, "params": {}, "start": T0 + start, "end": None,
                "outcome": "active", "error": None}
        self.fault_lines.append(base)
        if end is not None or outcome != "active":
            self.fault_lines.append(dict(base, end=None if end is None else T0 + end, outcome=outcome))
        return self

    def write(self, worker: str = "w0") -> Path:
        d = self.root / "records" / worker
        d.mkdir(parents=True, exist_ok=True)
        for kind, columns in KINDS.items():
            with open(d / f"{kind}.csv", "w", newline="") as fh:
                writer = csv.writer(fh)  # \r\n line ends, as the load generator writes
                writer.writerow(columns)
                for row in self.rows[kind]:
                    writer.writerow(["" if row.get(c) is None else _fmt(row.get(c)) for c in columns])
        (self.root / "run.json").write_text(json.dumps(self.meta))
        (self.root / "faults.jsonl").write_text("".join(json.dumps(x) + "\n" for x in self.fault_lines))
        return self.root


def _fmt(value: Any) -> str:
    return f"{value:.6f}" if isinstance(value, float) else str(value)


class ReportParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[tuple[str, str]] = []   # (section, src)
        self.urls: list[str] = []                 # every href/src that is not a data URI or #anchor
        self.tags: list[str] = []
        self._section = ""
        self.text: dict[str, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self._section = attrs.get("id", "")
            self.sections.append(self._section)
        if tag == "img":
            self.images.append((self._section, attrs.get("src", "")))
        for key in ("src", "href"):
            value = attrs.get(key)
            if value and not value.startswith(("data:", "#")):
                self.urls.append(value)

    def handle_data(self, data):
        self.text.setdefault(self._section, []).append(data)
