"""The reaper: cleans up a stack whose harness died without tearing it down.

`gauntlet up` starts it first, in its own session, with a manifest file. The harness
records in the manifest every process group it starts and every temp path it creates,
the load generator's group apart (`load_pgids`), and the run directory; a Docker stack
records its daemon and run label, whose containers, networks and volumes the reaper
removes (harness/docker/cleanup.py). The reaper polls the harness pid; when the harness
is gone (SIGKILL, OOM, a crashed terminal):

1. it stops the load generator first (TERM: users stop and records are written, then
   KILL after a grace), while the stack is still up, so no record after the harness's
   death blames the app for a stack that was being torn down;
2. it removes the Docker stack's resources, kills the stack's groups (TERM, grace,
   KILL) and removes the paths;
3. it closes every fault the run's journal still shows active as `interrupted`, and
   marks run.json interrupted, so `gauntlet report` of the run judges it fairly.

A normal teardown removes the manifest first, so the reaper then has nothing to do.

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

from common.liveness import pid_alive

POLL = 0.2
GRACE = 3.0
# Locust drains in-flight publishes (up to its publish timeout) and writes its records.
LOAD_GRACE = 20.0


def read_manifest(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"pgids": [], "load_pgids": [], "paths": []}


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


def stop_groups(pgids: list[int], grace: float) -> None:
    """TERM every group, wait up to `grace` for all of them, KILL what is left."""
    for pgid in pgids:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(group_alive(p) for p in pgids):
        time.sleep(0.05)
    for pgid in pgids:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def clean(manifest: dict, died_at: float | None = None) -> None:
    died_at = time.time() if died_at is None else died_at
    stop_groups([int(p) for p in manifest.get("load_pgids", [])], LOAD_GRACE)
    for entry in manifest.get("docker", []):
        from harness.docker.cleanup import reap

        reap(entry["host"], entry["run"], leave_swarm=entry.get("swarm_leave", False))
    stop_groups([int(p) for p in manifest.get("pgids", [])], GRACE)
    run_dir = manifest.get("run_dir")
    if run_dir:
        close_the_run(Path(run_dir), died_at)
    for path in manifest.get("paths", []):
        p = Path(path)
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def close_the_run(run_dir: Path, died_at: float) -> None:
    """Faults still active are closed as interrupted (the teardown ended them); run.json
    says the run was interrupted and when its harness died."""
    from chaos.journal import INTERRUPTED, Journal, journal_path, read_journal
    from harness.rundir import update_run_meta

    try:
        path = journal_path(run_dir)
        journal = Journal(path)
        for record in read_journal(path):
            if record.active:
                journal.close(record, INTERRUPTED, error="the harness died; the reaper tore the stack down",
                              end=time.time())
        if (run_dir / "run.json").exists():
            update_run_meta(run_dir, interrupted=True, harness_died=died_at, ended=time.time())
    except OSError:
        pass  # the run directory went away: nothing left to mark


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
    clean(read_manifest(manifest_path), died_at=time.time())
    manifest_path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
