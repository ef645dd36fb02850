"""The isolation check: did slow, stalled or vanishing subscribers cost the others?

One socket whose reader stopped must not make the server wait on it: every other
subscriber still gets every message live and within the late threshold. The check
reads the delivery analysis, which owes shaped subscribers (scenarios/shapes.py) their
messages eventually only and keeps their latency out of the latency table.

It is part of a verdict only when the load had shaped subscribers: without them there
is nothing it could show, and a pass would claim what was never tried. With them it
is unknown when the others were owed nothing live (nobody else connected).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reports.delivery import DeliveryOptions, analyze
from reports.phases import STEADY
from reports.records import SHAPE_PREFIX, RunData
from reports.check import CheckResult, Verdict

NAME = "isolation"


def applies(run: RunData) -> bool:
    detail = run.conn["detail"].astype(object)
    return bool(detail.map(lambda d: isinstance(d, str) and d.startswith(SHAPE_PREFIX)).any())


def check(run: RunData, options: DeliveryOptions | None = None) -> CheckResult:
    a = analyze(run, options)
    shapes: dict[str, int] = {}
    for shape in a.shaped.values():
        shapes[shape] = shapes.get(shape, 0) + 1
    p = a.pairs
    shaped_pairs = a.shaped_codes[p["sub"].to_numpy(dtype="int64")] if len(p) else np.zeros(0, dtype=bool)
    others = p[~shaped_pairs]
    steady = others["phase"].astype(object).to_numpy() == STEADY
    owed_live = int(others["live"].sum())
    lost_live = int((others["lost_live"].to_numpy() & steady).sum())
    lost = int(others["lost_eventual"].sum())  # in any phase: a loss for good is never theirs to cause
    # Inside a fault and its heal window everyone may be late (catch-up); only steady
    # lateness can be the shaped subscribers' doing.
    lat = a.latency[a.latency["phase"].astype(object) == STEADY]
    late = int(lat["late"].sum())
    p99 = float(np.percentile(lat["latency_ms"], 99)) if len(lat) else None
    shaped_lat = a.shaped_latency_ms if a.shaped_latency_ms is not None else np.zeros(0)
    shaped_p99 = float(np.percentile(shaped_lat, 99)) if len(shaped_lat) else None
    n_others = len(set(others["sub"].tolist()))
    who = ", ".join(f"{n} {name}" for name, n in sorted(shapes.items()))
    details: dict[str, Any] = {"shaped": shapes, "shaped_subscribers": sorted(a.shaped), "others": n_others,
                               "others_owed_live": owed_live, "others_lost_live_steady": lost_live,
                               "others_lost_for_good": lost, "others_late": late, "others_p99_ms": p99,
                               "shaped_p99_ms": shaped_p99,
                               "late_after_s": (options or DeliveryOptions()).late_after_s}
    head = f"with {who} subscribers, the other {n_others:,}"
    if owed_live == 0:
        return CheckResult(NAME, Verdict.UNKNOWN, f"{head} were owed nothing live: nothing to compare", details)
    tail = (f"lost {lost_live:,} live in steady state, {lost:,} for good; {late:,} late in steady state; p99 "
            + (f"{p99:.0f} ms" if p99 is not None else "n/a")
            + (f" (theirs {shaped_p99:.0f} ms)" if shaped_p99 is not None else ""))
    if lost_live or lost or late:
        return CheckResult(NAME, Verdict.FAIL, f"{head} paid for them: {tail}", details)
    return CheckResult(NAME, Verdict.PASS, f"{head} {tail}", details)
