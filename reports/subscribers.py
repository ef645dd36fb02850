"""Subscribers that could not connect or reconnect, per phase.

Delivery owes a message only to subscribers connected when it was published (or that
resume after it), so a subscriber that cannot get a connection is owed nothing: with
every replica dead, delivery alone would say 100 %. This counts those subscribers
instead, from conn.csv, as the metric `ws_subscribers_unconnected`.

A subscriber is without a connection from a drop (a `disconnect` the load generator
did not cause) or, before its first connect and after a planned absence (a reconnect
storm's or a vanishing client's drop), from its first failed attempt; until its next `connect`, its `stop`
(the load generator ended it while it had none), or the end of the load. A stretch
longer than `UNCONNECTED_AFTER_S` means it could not (re)connect: one sample per
subscriber and phase that the stretch beyond that allowance covers, tagged with the
replica it was last on and whether it had ever connected. A replica kill's sockets
reconnect through the load balancer in well under a second; the allowance is the load
generator's default reconnect backoff cap (full jitter up to 10 s between attempts once
several failed), so a subscriber still backing off is not yet one that cannot connect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports.phases import active_faults, phase_of
from reports.records import RunData

UNCONNECTED_AFTER_S = 10.0
LOADGEN_STOP = "stopped by load generator"  # scenarios/subscription.py: the user was stopped
# Planned drops (scenarios/subscription.py): the subscriber comes back after its own delay.
PLANNED_DROPS = frozenset({"reconnect storm", "vanished without a close"})
NEVER, RECONNECT = "connect", "reconnect"  # the `reason` tag: never connected, or lost it


def stuck_intervals(run: RunData, allowance: float = UNCONNECTED_AFTER_S) -> pd.DataFrame:
    """One row per stretch a subscriber went without a connection for longer than the
    allowance: sub, user, instance (last connected to, '' if never), reason, start, end
    (`start` = when the allowance ran out)."""
    c = run.conn
    rows: list[tuple] = []
    if len(c):
        load_end = run.load_span()[1]
        frame = pd.DataFrame({"ts": c["ts"].to_numpy(dtype="float64"), "sub": c["sub"].astype(object),
                              "user": c["user"].astype(object), "event": c["event"].astype(object),
                              "instance": c["instance"].astype(object), "detail": c["detail"].astype(object)})
        frame = frame[frame["sub"].notna()].sort_values(["sub", "ts"], kind="stable")
        for sub, events in frame.groupby("sub", sort=False):
            rows.extend(_stretches(sub, events, load_end, allowance))
    return pd.DataFrame(rows, columns=["sub", "user", "instance", "reason", "start", "end"])


def _stretches(sub: str, events: pd.DataFrame, load_end: float, allowance: float) -> list[tuple]:
    out = []
    since: float | None = None
    last_instance = ""
    ever = False
    user = ""
    done = False
    for ts, event, instance, detail, who in zip(events["ts"], events["event"], events["instance"],
                                                events["detail"], events["user"]):
        user = who if isinstance(who, str) else user
        if event == "connect":
            if since is not None and ts - since > allowance:
                out.append((sub, user, last_instance, RECONNECT if ever else NEVER, since + allowance, ts))
            since, ever, done = None, True, False
            last_instance = instance if isinstance(instance, str) else ""
        elif event == "connect_fail":
            if since is None:
                since = ts
        elif event == "disconnect":
            text = detail if isinstance(detail, str) else ""
            if text == LOADGEN_STOP:
                since, done = None, True
            elif text not in PLANNED_DROPS:
                since = ts
        elif event == "stop":
            if since is not None and ts - since > allowance:
                out.append((sub, user, last_instance, RECONNECT if ever else NEVER, since + allowance, ts))
            since, done = None, True
    if since is not None and not done and load_end - since > allowance:
        out.append((sub, user, last_instance, RECONNECT if ever else NEVER, since + allowance, load_end))
    return out


def samples(run: RunData, heal_window_s: float) -> pd.DataFrame:
    """The metric's samples: one per (stuck stretch, phase it covers), at the moment the
    stretch entered that phase."""
    stuck = stuck_intervals(run)
    faults = active_faults(run)
    end = run.t_end
    cuts = set()
    for fault in faults:
        cuts.update((fault.start, fault.end_or(end)))
        if fault.end is not None:
            cuts.add(fault.end + heal_window_s)
    edges = np.array(sorted(cuts), dtype="float64")
    rows = []
    for r in stuck.itertuples(index=False):
        inner = edges[(edges > r.start) & (edges < r.end)]
        bounds = np.concatenate([[r.start], inner, [r.end]])
        phases, _ = phase_of((bounds[:-1] + bounds[1:]) / 2.0, faults, end, heal_window_s)
        seen = set()
        for start, phase in zip(bounds[:-1], np.asarray(phases, dtype=object)):
            if phase not in seen:
                seen.add(phase)
                rows.append((float(start), 1.0, r.instance, r.reason, phase, r.sub))
    return pd.DataFrame(rows, columns=["ts", "value", "instance", "reason", "phase", "sub"])
