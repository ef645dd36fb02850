"""`gauntlet down`: tear down the stack that `gauntlet up` started (from any terminal)."""

from __future__ import annotations

import argparse
import os
import signal
import time

from common.liveness import pid_alive
from common.state import load_state, state_path


def add_parser(sub) -> None:
    p = sub.add_parser("down", help="tear down the running stack",
                       description="Stop the running stack: asks its `gauntlet up` process to tear down "
                                   "(TERM, grace, KILL for every child) and waits until it has.")
    p.add_argument("--state", metavar="FILE", help="state file (default .gauntlet/stack.json or $GAUNTLET_STATE)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the teardown (default 60)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    path = state_path(args.state)
    state = load_state(path)
    pid = state.harness_pid
    if not pid_alive(pid):
        # Its harness died; the reaper has cleaned up or is doing so. Kill what is left.
        for pid_ in [c.pid for c in state.components] + [r.pid for r in state.replicas]:
            if pid_ and pid_alive(pid_):
                try:
                    os.killpg(pid_, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        path.unlink(missing_ok=True)
        print("stack was not running (stale state removed)")
        return 0
    print(f"stopping the stack (harness pid {pid}) ...", flush=True)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + args.timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            print(f"gauntlet: harness pid {pid} did not stop in {args.timeout:.0f}s; killing it "
                  f"(its reaper removes the rest)")
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.1)
    path.unlink(missing_ok=True)
    print("stack down")
    return 0
