"""The reaper: cleans up a stack whose harness died without tearing it down.

`gauntlet up` starts it first, in its own session, with a manifest file. The harness
records in the manifest every process group it starts and every temp path it creates.
The reaper polls the harness pid; when the harness is gone (SIGKILL, OOM, a crashed
terminal) it kills the recorded groups (TERM, grace, KILL) and removes the paths.
A normal teardown empties the manifest first, so the reaper then has nothing to do.

Run as: python -m harness.reaper WATCH_PID MANIFEST
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

POLL = 0.2
GRACE = 3.0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still "exists"; read its state to tell.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def read_manifest(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"pgids": [], "paths": []}


def write_manifest(path: Path, manifest: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest))
    os.replace(tmp, path)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def clean(manifest: dict) -> None:
    pgids = [int(p) for p in manifest.get("pgids", [])]
    for pgid in pgids:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + GRACE
    while time.monotonic() < deadline and any(group_alive(p) for p in pgids):
        time.sleep(0.05)
    for pgid in pgids:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for path in manifest.get("paths", []):
        p = Path(path)
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m harness.reaper WATCH_PID MANIFEST", file=sys.stderr)
        return 2
    watch, manifest_path = int(argv[0]), Path(argv[1])
    # The harness's Ctrl-C goes to its terminal's foreground group, not to us, but be sure.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    while pid_alive(watch):
        if not manifest_path.exists():
            return 0  # the harness tore down cleanly and removed the manifest
        time.sleep(POLL)
    clean(read_manifest(manifest_path))
    manifest_path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
