"""The live status line of `gauntlet run`: elapsed, users, req/s, errors, sockets, faults.

Read from what the load generator already writes (Locust's stats history CSV, each
process's users.csv), so watching costs the load generator nothing.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from common.units import format_duration


def _last_rows(path: Path, max_bytes: int = 16384) -> list[dict[str, str]]:
    """The header and the last rows of a CSV that another process is appending to."""
    try:
        with open(path, "rb") as fh:
            header = fh.readline().decode("utf-8", "replace")
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(len(header), size - max_bytes))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    lines = tail.splitlines()
    if size > max_bytes + len(header):
        lines = lines[1:]  # the first line is probably cut
    if lines and not tail.endswith("\n"):
        lines = lines[:-1]  # still being written
    return list(csv.DictReader(io.StringIO(header + "\n".join(lines))))


@dataclass
class LiveFigures:
    users: int = 0
    rps: float = 0.0
    failures: int = 0
    requests: int = 0
    sockets: int = 0


def read_figures(run_dir: Path, locust_prefix: Path) -> LiveFigures:
    figures = LiveFigures()
    for row in reversed(_last_rows(Path(f"{locust_prefix}_stats_history.csv"))):
        if row.get("Name") == "Aggregated":
            figures.users = int(float(row.get("User Count") or 0))
            figures.rps = float(row.get("Requests/s") or 0)
            figures.requests = int(float(row.get("Total Request Count") or 0))
            figures.failures = int(float(row.get("Total Failure Count") or 0))
            break
    for users_csv in (run_dir / "records").glob("*/users.csv"):
        rows = _last_rows(users_csv, 1024)
        if rows:
            figures.sockets += int(float(rows[-1].get("sockets") or 0))
    return figures


def status_line(elapsed: float, total: float | None, figures: LiveFigures, faults: str) -> str:
    when = format_duration(elapsed) + (f"/{format_duration(total)}" if total else "")
    errors = f"{figures.failures / figures.requests:.1%}" if figures.requests else "0%"
    line = (f"[{when:>11}] users {figures.users:>5}  req/s {figures.rps:>7.1f}  errors {figures.failures} ({errors})"
            f"  sockets {figures.sockets:>5}")
    return line + (f"  faults: {faults}" if faults else "")
