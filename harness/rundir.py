"""Run directories: `runs/<YYYYmmdd-HHMMSS>-<name>/`, everything one run produced."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any


def new_run_dir(runs_dir: Path, name: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(runs_dir) / f"{stamp}-{slug}"
    path, n = base, 1
    while True:
        try:
            path.mkdir(parents=True)
            break
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")
    (path / "logs").mkdir()
    return path.resolve()


def update_run_meta(run_dir: Path, **fields: Any) -> dict:
    """Merge fields into run.json (metadata the report shows)."""
    file = Path(run_dir) / "run.json"
    try:
        meta = json.loads(file.read_text())
    except (OSError, ValueError):
        meta = {}
    meta.update(fields)
    tmp = file.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=2, default=str))
    tmp.replace(file)
    return meta
