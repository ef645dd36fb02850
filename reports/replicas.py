"""The app's own health: did a replica exit when nothing asked it to?

The harness that supervises the replicas writes `replicas.jsonl` in the run directory
(harness/lifecycle.py), one JSON object per line:

    {"ts": 1763900012.4, "replica": "r2", "event": "started", "id": "4711", "pid": 4711}
    {"ts": 1763900020.1, "replica": "r2", "event": "stopping", "id": "4711", "reason": "signal", "signal": 9}
    {"ts": 1763900020.2, "replica": "r2", "event": "exited", "id": "4711", "code": null, "signal": 9,
     "log_tail": ["..."], "detail": ""}

`id` names one incarnation of the replica (a pid, or a container's start time), so an
exit is matched with the request that caused it even across restarts. `stopping` is
the harness asking for the exit (a fault's signal, a restart, a scale-in, the
teardown); `exited` is the exit as seen (code, or the signal that ended it, and the
tail of what that incarnation wrote to its log).

An exit is asked for when the harness asked that incarnation to stop, or when the fault
journal has a fault that ends replica processes (kill, terminate, restart, a rolling
restart, a scale-in, a scale-out's heal) aimed at it and active when it exited; that is
the only way to know for `gauntlet chaos kill` from another terminal, which signals the
pid directly. Every other exit is the app's own: a crash, a fatal error, an `exit(1)`
while Redis was down. A replica that dies during a fault it was not the target of (or
of a fault that does not end processes, such as a partition) fails the check.
"""

from __future__ import annotations

import signal as signals
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reports.records import FaultWindow, RunData
from common.replica_events import EXITED, FAULT_SLACK_S, REPLICAS_FILE, STOPPING, read_events
from reports.check import CheckResult, Verdict

CACHE_KEY = "replica_lifecycle"


@dataclass(frozen=True)
class Exit:
    """One replica exit and what explains it (nothing: the app's own exit)."""

    replica: str
    ts: float
    at_s: float  # seconds into the run (the report's clock)
    code: int | None
    signal: int | None
    log_tail: tuple[str, ...]
    detail: str
    asked_by: str  # '' when nothing asked for it
    fault_id: str | None = None  # the fault it happened during (asked or not)

    @property
    def asked(self) -> bool:
        return bool(self.asked_by)

    @property
    def how(self) -> str:
        """`exit code 1`, `signal 9 (SIGKILL)`, `exit code unknown`."""
        if self.signal is not None:
            try:
                name = signals.Signals(self.signal).name
            except ValueError:
                name = "?"
            return f"signal {self.signal} ({name})"
        if self.code is not None:
            return f"exit code {self.code}"
        return "exit code unknown"

    def to_dict(self) -> dict[str, Any]:
        return {"replica": self.replica, "ts": self.ts, "at_s": round(self.at_s, 3), "code": self.code,
                "signal": self.signal, "how": self.how, "asked": self.asked, "asked_by": self.asked_by or None,
                "fault_id": self.fault_id, "detail": self.detail or None, "log_tail": list(self.log_tail)}


@dataclass(frozen=True)
class Lifecycle:
    """Every replica exit of a run, judged."""

    recorded: bool  # False: the run has no lifecycle records, so nothing can be said
    replicas: tuple[str, ...]
    exits: tuple[Exit, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def unasked(self) -> list[Exit]:
        return [e for e in self.exits if not e.asked]


def recorded(run: RunData) -> bool:
    return (run.run_dir / REPLICAS_FILE).exists()


# Fault kinds that end replica processes, and which replicas a journalled one may end.
# The journal's params carry what the fault learned (the replicas it removed, added or
# restarted), so a whole-stack fault names its victims.
def _own_target(fault: FaultWindow) -> set[str]:
    return {fault.target}


def _learned(key: str, fallback: Callable[[FaultWindow], set[str]] | None = None) -> Callable[[FaultWindow], set[str]]:
    def victims(fault: FaultWindow) -> set[str]:
        names = fault.params.get(key)
        if isinstance(names, list) and names:
            return {str(n) for n in names}
        return fallback(fault) if fallback else set()
    return victims


def _every_replica(fault: FaultWindow) -> set[str]:
    return {"*"}


ENDS_REPLICAS: dict[str, Callable[[FaultWindow], set[str]]] = {
    "kill": _own_target,
    "terminate": _own_target,
    "restart": _own_target,
    "rolling-restart": _learned("restarted", _every_replica),
    "scale-in": _learned("removed", _own_target),
    "scale-out": _learned("added"),  # its heal removes what it added
}


def _fault_for(name: str, ts: float, faults: tuple[FaultWindow, ...], run_end: float,
               ending_only: bool) -> FaultWindow | None:
    for fault in faults:
        if not fault.injected:
            continue
        if not fault.start - 1.0 <= ts <= fault.end_or(run_end) + FAULT_SLACK_S:
            continue
        if not ending_only:
            return fault
        victims = ENDS_REPLICAS.get(fault.kind)
        if victims is not None and (name in (v := victims(fault)) or "*" in v):
            return fault
    return None


def lifecycle(run: RunData) -> Lifecycle:
    """Every exit of the run, each with what asked for it (computed once per run)."""
    if CACHE_KEY in run.cache:
        return run.cache[CACHE_KEY]
    path = run.run_dir / REPLICAS_FILE
    if not path.exists():
        result = Lifecycle(False, ())
        run.cache[CACHE_KEY] = result
        return result
    events, warnings = read_events(path)
    stops: dict[tuple[str, str], LifecycleEvent] = {}
    seen: set[tuple[str, str]] = set()
    names: list[str] = []
    exits: list[Exit] = []
    run_end = run.t_end
    for e in events:
        if e.replica not in names:
            names.append(e.replica)
        key = (e.replica, e.id)
        if e.event == STOPPING:
            stops.setdefault(key, e)
        elif e.event == EXITED and key not in seen:
            seen.add(key)
            stop = stops.get(key)
            ending = _fault_for(e.replica, e.ts, run.faults, run_end, ending_only=True)
            during = ending or _fault_for(e.replica, e.ts, run.faults, run_end, ending_only=False)
            if stop is not None:
                what = f"the harness ({stop.reason}" + (f", signal {stop.signal}" if stop.signal else "") + ")"
                asked_by = f"fault {ending.id} ({ending.label})" if ending is not None else what
            else:
                asked_by = f"fault {ending.id} ({ending.label})" if ending is not None else ""
            exits.append(Exit(e.replica, e.ts, e.ts - run.t0, e.code, e.signal, e.log_tail, e.detail, asked_by,
                              during.id if during is not None else None))
    result = Lifecycle(True, tuple(names), tuple(exits), tuple(warnings))
    run.cache[CACHE_KEY] = result
    return result


def describe(e: Exit) -> str:
    """`r2 exited by itself at 12.3 s (exit code 3) during fault f1 (partition r2)`."""
    during = f" during fault {e.fault_id}" if e.fault_id else ""
    return f"{e.replica} exited at {e.at_s:.1f} s ({e.how}){during}, no fault asked for it"


def last_line(e: Exit) -> str:
    lines = [line.strip() for line in e.log_tail if line.strip()]
    return lines[-1][:160] if lines else "(its log is empty)"


def check(run: RunData) -> CheckResult:
    life = lifecycle(run)
    details: dict[str, Any] = {"replicas": list(life.replicas), "exits": [e.to_dict() for e in life.exits],
                               "file": REPLICAS_FILE}
    if life.warnings:
        details["warnings"] = list(life.warnings)
    if not life.replicas:
        return CheckResult("replicas", Verdict.UNKNOWN,
                           f"{REPLICAS_FILE} names no replica: whether the app stayed up cannot be told", details)
    bad = life.unasked
    if bad:
        shown = "; ".join(f"{describe(e)}; log: {last_line(e)}" for e in bad[:3])
        more = f"; and {len(bad) - 3} more" if len(bad) > 3 else ""
        return CheckResult("replicas", Verdict.FAIL,
                           f"{len(bad)} replica exit(s) nobody asked for: {shown}{more}", details)
    asked = [e for e in life.exits if e.asked]
    by_fault = sum(1 for e in asked if e.asked_by.startswith("fault"))
    teardown = len(asked) - by_fault
    parts = [f"{len(life.replicas)} replica(s), none exited unasked"]
    if by_fault:
        parts.append(f"{by_fault} exit(s) asked for by faults")
    if teardown:
        parts.append(f"{teardown} stopped by the harness")
    return CheckResult("replicas", Verdict.PASS, "; ".join(parts), details)


NOT_RECORDED = (f"replica health not judged: this run has no {REPLICAS_FILE} (the harness did not supervise "
                f"the replicas: a load run against --host, or the swarm backend)")
