"""Recovery per fault: after the heal, are deliveries complete again *and* is latency
back to its steady level? Both times are reported; the fault has recovered when both
are, and by the later of the two.

- **delivery recovered at**: from the heal (to the next fault's start or the run's
  end), the send time of the first message after the last one an owed live subscriber
  missed. Nothing missed after the heal: 0 s. Completeness must be shown, not assumed:
  at least `min_window_samples` owed deliveries must follow that point, all made.
- **latency recovered at**: the first delivery of the first `rolling_window_s` window
  after the heal whose delivery p99 is within `recovery_factor` × the steady p99 measured
  *before* the fault (after it, a system that never recovered would set its own
  baseline), over the deliveries that exercise what the fault broke: cross-instance
  traffic to or from the target replica, all cross-instance traffic when the target is
  not a replica.

A recovery that cannot be judged says exactly why: no steady-state deliveries before the
fault to take the baseline from, no delivery owed after the heal, a run that ended
before the heal window did, or a fault the run never healed because it died first
(`interrupted`: the reaper's teardown ended it, after the load had stopped).

An instant fault (`flush`: one step, nothing to heal) recovers from its own time: its
journal window closes as soon as its inject returns, so "after the heal" is "after the
flush", and the reasons say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from reports.phases import AFTER_HEAL, FAULT, STEADY
from reports.records import FaultWindow

RECOVERED, SLOW, NOT_RECOVERED = "recovered", "slow", "not recovered"
NOT_OBSERVED, NO_BASELINE, NOT_HEALED, NOT_INJECTED = "not observed", "no baseline", "not healed", "not injected"
INTERRUPTED = "interrupted"
# A journal window this short is an action done in one step (flush empties Redis and
# returns): there is no heal to speak of, recovery runs from the fault's own time.
INSTANT_S = 1.0
FAILED = (SLOW, NOT_RECOVERED)
UNJUDGED = (NOT_OBSERVED, NO_BASELINE, NOT_HEALED, INTERRUPTED)


class RecoveryOptions(Protocol):
    heal_window_s: float
    recovery_factor: float
    rolling_window_s: float
    min_window_samples: int


@dataclass(frozen=True)
class FaultRecovery:
    """What one fault did to delivery, and when delivery and latency came back."""

    fault_id: str
    kind: str
    target: str
    start: float
    end: float | None
    outcome: str
    expected_live_inside: int
    lost_live_inside: int
    lost_eventual_inside: int
    lost_live_after_heal: int           # owed live deliveries missed, sent in the heal window
    last_loss_after_heal_s: float | None  # heal -> send time of the last one missed (None: none missed)
    first_delivery_s: float | None      # heal -> first live delivery of a message sent after heal
    delivery_recovered_s: float | None  # heal -> from here on every owed live delivery was made
    latency_recovered_s: float | None   # heal -> start of the first window with p99 back to steady
    recovered_s: float | None           # the later of the two: when the fault had recovered
    steady_p99_ms: float | None         # the baseline: steady p99 before the fault
    observed_after_heal_s: float        # how long the load went on publishing after the heal
    status: str                         # recovered | slow | not recovered | not observed | no baseline
                                        # | not healed | not injected | interrupted
    reason: str = ""                    # the status in words: why not, or what could not be judged

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def p99_recovered_s(self) -> float | None:
        """The latency recovery time under its former name."""
        return self.latency_recovered_s


def recover(fault: FaultWindow, *, pairs: pd.DataFrame, latency: pd.DataFrame, options: RecoveryOptions,
            run_end: float, replicas: set[str], cross: str | None, later_starts: Sequence[float]) -> FaultRecovery:
    """The recovery of one fault.

    `pairs`: owed deliveries (ts_sent, fault, phase, live, lost_live, lost_eventual);
    `latency`: live first deliveries (ts, sent_ts, latency_ms, path, instance, origin,
    phase); `run_end`: when the load stopped publishing; `cross`: the path label of cross-instance deliveries, None when the run has
    none; `later_starts`: start times of the run's faults (the next one bounds this
    fault's after-heal observation).
    """
    o = options
    fault_col, phase_col = pairs["fault"].to_numpy(), pairs["phase"].to_numpy()
    live, lost_live = pairs["live"].to_numpy(dtype=bool), pairs["lost_live"].to_numpy(dtype=bool)
    mine = fault_col == fault.id
    in_fault, after = mine & (phase_col == FAULT), mine & (phase_col == AFTER_HEAL)
    base: dict[str, Any] = dict(
        fault_id=fault.id, kind=fault.kind, target=fault.target, start=fault.start, end=fault.end,
        outcome=fault.outcome, expected_live_inside=int(live[in_fault].sum()),
        lost_live_inside=int(lost_live[in_fault].sum()),
        lost_eventual_inside=int(pairs["lost_eventual"].to_numpy(dtype=bool)[in_fault].sum()),
        lost_live_after_heal=int(lost_live[after].sum()),
    )
    empty = dict(last_loss_after_heal_s=None, first_delivery_s=None, delivery_recovered_s=None,
                 latency_recovered_s=None, recovered_s=None, steady_p99_ms=None, observed_after_heal_s=0.0)
    if not fault.injected:
        return FaultRecovery(**base, **empty, status=NOT_INJECTED, reason="the fault did not inject")
    if fault.outcome == INTERRUPTED:
        # The reaper's teardown is not a heal: the load had stopped, nothing after it shows
        # whether the app would have come back.
        return FaultRecovery(**base, **empty, status=INTERRUPTED,
                             reason="the run died while the fault was active and its teardown ended it, "
                                    "not a heal: whether the app recovers cannot be judged")
    if fault.end is None or fault.outcome == "heal_failed":
        return FaultRecovery(**base, **empty, status=NOT_HEALED,
                             reason="the fault never healed: nothing to recover from")
    heal = fault.end
    observed = max(0.0, run_end - heal)
    since = f"the {fault.kind}" if is_instant(fault) else "the heal"
    deadline = o.heal_window_s
    limit = min([run_end, *(s for s in later_starts if s > heal)])

    delivery = _delivery_recovery(pairs["ts_sent"].to_numpy(dtype="float64"), live, lost_live, heal, limit,
                                  o.min_window_samples, since)
    sel = _exercised(latency, fault, replicas, cross)
    reference = _baseline(sel, latency, fault, o.min_window_samples)
    first, lat_recovered = _latency_recovery(sel, heal, reference, o)

    rec = None
    if delivery.at is not None and lat_recovered is not None:
        rec = max(delivery.at, lat_recovered)
    parts = [delivery.text]
    if reference is None:
        parts.append("latency: no steady-state deliveries before the fault to take the baseline from")
    elif lat_recovered is not None:
        parts.append(f"latency back within {o.recovery_factor:g}× the steady p99 ({reference:,.0f} ms) "
                     f"{lat_recovered:.1f} s after {since}")
    else:
        parts.append(f"latency p99 not back within {o.recovery_factor:g}× the steady {reference:,.0f} ms "
                     f"in the {deadline:g} s after {since}")
    # A failure the records prove beats one they cannot judge.
    delivery_late = (delivery.at is not None and delivery.at > deadline) or (
        delivery.last_loss is not None and delivery.last_loss > deadline)
    if rec is not None:
        status = RECOVERED if rec <= deadline else SLOW
    elif delivery_late:
        status = SLOW if delivery.at is not None else NOT_RECOVERED
    elif reference is not None and lat_recovered is None and observed >= deadline:
        status = NOT_RECOVERED
    elif reference is None:
        status = NO_BASELINE
    else:
        status = NOT_OBSERVED
        if observed <= 0.0:
            parts.append(f"the load had stopped before {since}")
        elif observed < deadline:
            parts.append(f"the load went on {observed:.1f} s after {since}, less than the {deadline:g} s "
                         f"heal window")
    return FaultRecovery(**base, last_loss_after_heal_s=delivery.last_loss, first_delivery_s=first,
                         delivery_recovered_s=delivery.at, latency_recovered_s=lat_recovered, recovered_s=rec,
                         steady_p99_ms=reference, observed_after_heal_s=observed, status=status,
                         reason="; ".join(parts))


@dataclass(frozen=True)
class _Delivery:
    at: float | None           # heal -> complete from here on
    last_loss: float | None    # heal -> the last miss
    text: str
    unobserved: bool           # too little owed after the heal (or after the last miss) to tell


def is_instant(fault: FaultWindow) -> bool:
    """An action done in one step (flush), whose window is its inject."""
    return fault.end is not None and fault.end - fault.start < INSTANT_S


def _delivery_recovery(sent: np.ndarray, live: np.ndarray, lost: np.ndarray, heal: float, limit: float,
                       min_samples: int, since: str = "the heal") -> _Delivery:
    owed = live & (sent > heal) & (sent <= limit)
    if not owed.any():
        return _Delivery(None, None, f"delivery: no live delivery owed after {since}", True)
    times = sent[owed]
    missed = lost[owed]
    if not missed.any():
        if len(times) < min_samples:
            return _Delivery(None, None, f"delivery: only {len(times)} deliveries owed after {since}", True)
        return _Delivery(0.0, None, f"delivery complete from {since} on ({len(times):,} owed, all made)", False)
    last = float(times[missed].max())
    # By message: a broadcast's other subscribers share its send time.
    after = times > last
    if int(after.sum()) < min_samples:
        return _Delivery(None, last - heal, f"delivery: {int(missed.sum()):,} owed deliveries missed after "
                                            f"{since}, still {last - heal:.1f} s after it, and not shown complete "
                                            f"since", True)
    at = float(times[after].min()) - heal
    return _Delivery(at, last - heal, f"delivery complete again {at:.1f} s after {since} "
                                      f"({int(missed.sum()):,} owed deliveries missed before that)", False)


def _exercised(latency: pd.DataFrame, fault: FaultWindow, replicas: set[str], cross: str | None) -> pd.DataFrame:
    """Deliveries that exercise what the fault broke."""
    sel = latency
    if cross is not None:
        sel = sel[(sel["path"] == cross).to_numpy()]
    if fault.target in replicas:
        sel = sel[((sel["instance"] == fault.target) | (sel["origin"] == fault.target)).to_numpy()]
    return sel


def _baseline(sel: pd.DataFrame, latency: pd.DataFrame, fault: FaultWindow, min_samples: int) -> float | None:
    """Steady p99 before the fault: of the exercised deliveries, else of all of them."""
    for frame in (sel, latency):
        before = frame.loc[((frame["phase"] == STEADY) & (frame["sent_ts"] < fault.start)).to_numpy(), "latency_ms"]
        if len(before) >= min_samples:
            return float(np.percentile(before.to_numpy(dtype="float64"), 99))
    return None


def _latency_recovery(sel: pd.DataFrame, heal: float, reference: float | None,
                      o: RecoveryOptions) -> tuple[float | None, float | None]:
    # Only the heal window matters: recovering later is "slow" either way.
    horizon = heal + o.heal_window_s + o.rolling_window_s
    sent = sel["sent_ts"].to_numpy(dtype="float64")
    post = sel[(sent >= heal) & (sent <= horizon)]
    first = float(post["ts"].min() - heal) if len(post) else None
    if reference is None or not len(post):
        return first, None
    series = pd.Series(post["latency_ms"].to_numpy(),
                       index=pd.to_datetime(post["ts"].to_numpy(), unit="s")).sort_index()
    window = f"{int(o.rolling_window_s * 1000)}ms"
    p99 = series.rolling(window).quantile(0.99)
    n = series.rolling(window).count()
    ok = (p99 <= o.recovery_factor * reference) & (n >= o.min_window_samples)
    if not ok.any():
        return first, None
    # The first healthy trailing window (t - w, t] ends at t; latency has been healthy
    # since the first delivery in it (never before the heal itself).
    index = series.index
    end = ok.idxmax()
    since = index[index.searchsorted(end - pd.Timedelta(seconds=o.rolling_window_s), side="right")]
    return first, max(0.0, since.value / 1e9 - heal)
