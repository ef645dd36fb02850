"""The shutdown check: every request a replica had accepted before its SIGTERM completes.

A graceful stop (the `terminate`, `restart`, `rolling-restart`, `scale-in` faults) must
stop taking new work, finish what it has, then exit. Requests finishing in
milliseconds never show a replica that drops work in flight, so the load's slow
requests (`--slow-requests`, scenarios/users.py: each works seconds on the server)
make sure some always are. A slow request is in flight at a stop when it was sent
before the stop began and had not finished then; it completed if it got a 2xx. One
that got no answer, a 502 (the load balancer lost its upstream) or any other error
was dropped. The load balancer never retries these POSTs on another replica, so a
drop cannot hide.

Part of a verdict only when the run had both a graceful stop and slow requests; it is
unknown when no slow request was in flight at any stop.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reports.records import RunData
from reports.check import CheckResult, Verdict

NAME = "shutdown"
GRACEFUL = ("terminate", "restart", "rolling-restart", "scale-in")
SLOW_SUFFIX = " (slow)"
# A request sent this close before the stop may not have reached the replica yet.
ACCEPT_MARGIN_S = 0.05
EXAMPLES = 10


def _slow(run: RunData) -> Any:
    http = run.http
    names = http["name"].astype(object)
    return http[names.map(lambda n: isinstance(n, str) and n.endswith(SLOW_SUFFIX)).to_numpy(dtype=bool)]


def _stops(run: RunData) -> list:
    return [f for f in run.faults if f.kind in GRACEFUL and f.injected]


def applies(run: RunData) -> bool:
    return bool(_stops(run)) and len(_slow(run)) > 0


def check(run: RunData) -> CheckResult:
    slow = _slow(run)
    ts = slow["ts"].to_numpy(dtype="float64")
    end = ts + slow["dur_ms"].to_numpy(dtype="float64", na_value=np.nan) / 1000.0
    ok = slow["ok"].to_numpy(dtype=bool)
    status = slow["status"].to_numpy(dtype="float64", na_value=np.nan)
    rows, dropped_rows = [], []
    for fault in _stops(run):
        t = fault.start
        inflight = (ts < t - ACCEPT_MARGIN_S) & ~(end < t)
        n = int(inflight.sum())
        dropped = inflight & ~ok
        rows.append({"fault_id": fault.id, "kind": fault.kind, "target": fault.target, "sigterm": t,
                     "in_flight": n, "completed": int((inflight & ok).sum()), "dropped": int(dropped.sum())})
        for i in np.flatnonzero(dropped)[:EXAMPLES]:
            dropped_rows.append({"fault_id": fault.id, "sent_before_s": round(t - ts[i], 3),
                                 "status": None if np.isnan(status[i]) else int(status[i]),
                                 "error": str(slow["error"].iloc[i]), "request": str(slow["name"].iloc[i])})
    in_flight = sum(r["in_flight"] for r in rows)
    dropped = sum(r["dropped"] for r in rows)
    details: dict[str, Any] = {"stops": rows, "in_flight": in_flight, "dropped": dropped,
                               "dropped_requests": dropped_rows, "slow_requests": len(slow)}
    parts = "; ".join(f"{r['fault_id']} {r['kind']} {r['target']}: {r['dropped']} of {r['in_flight']} dropped"
                      for r in rows)
    if dropped:
        return CheckResult(NAME, Verdict.FAIL, f"{dropped:,} of {in_flight:,} requests in flight at a graceful "
                                               f"stop were dropped ({parts})", details)
    if not in_flight:
        return CheckResult(NAME, Verdict.UNKNOWN, f"no slow request was in flight at any graceful stop ({parts}): "
                                                  "nothing showed that in-flight work survives one", details)
    return CheckResult(NAME, Verdict.PASS, f"0 of {in_flight:,} requests in flight at a graceful stop dropped "
                                           f"({parts})", details)
