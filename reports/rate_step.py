"""Did one step of the fan-out rate search hold its targets?

A step is a short fanout run: subscribers and publishers ramp up for `ramp_s`, then the
offered rate holds for `hold_s`. Only the hold counts (the ramp is connection set-up),
measured from the run's first record. The step holds when, over the hold, delivery
p99 stays under the target, no owed delivery is lost (live or for good), few publishes
fail, and the acknowledged rate keeps up with the offered one: an open-model publisher
that falls behind (the SUT, or the load generator itself, saturated) has not
sustained the rate even if the few messages it got through were fast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reports import delivery, series
from reports.compare_plan import RateStep, RateTarget
from reports.delivery import DeliveryOptions
from reports.records import load_run


def evaluate_step(run_dir: Path, *, broker: str, rate: float, publishers: int, subscribers: int, ramp_s: float,
                  hold_s: float, target: RateTarget, seconds: float, label_dir: str) -> RateStep:
    run = load_run(run_dir)
    analysis = delivery.analyze(run, DeliveryOptions())
    pub = run.pub
    sent = pub["ts_sent"].to_numpy(dtype="float64")
    intended = pub["ts_intended"].to_numpy(dtype="float64")
    # A publish belongs to the hold by its schedule time: one that never went out
    # (overload) has no send time but was offered all the same.
    when = np.where(np.isnan(intended), sent, intended)
    # Publishers are spawned first, so their first scheduled send marks the load's
    # start better than the first record (subscribers connect a moment later). The
    # last second is left out: sends cut short by the stop are not the SUT's doing.
    known = when[~np.isnan(when)]
    origin = float(known.min()) if len(known) else run.load_span()[0]
    start = origin + ramp_s
    end = start + max(1.0, hold_s - 1.0)
    in_hold = (when >= start) & (when < end)
    ok = series.acknowledged(pub)[in_hold]
    acked = int(ok.sum())
    offered = int(in_hold.sum())
    failed_share = float((~ok).sum()) / offered if offered else 0.0
    lat = analysis.latency
    lat_sent = lat["sent_ts"].to_numpy(dtype="float64")
    latency = lat["latency_ms"].to_numpy(dtype="float64")[(lat_sent >= start) & (lat_sent < end)]
    p99 = series.Percentiles.of(latency).p99
    pairs = analysis.pairs
    pair_sent = pairs["ts_sent"].to_numpy(dtype="float64")
    in_pairs = (pair_sent >= start) & (pair_sent < end)
    lost = int(pairs["lost_live"].to_numpy()[in_pairs].sum() + pairs["lost_eventual"].to_numpy()[in_pairs].sum())
    recv_ts = run.recv["ts"].to_numpy(dtype="float64")
    deliveries = int(((recv_ts >= start) & (recv_ts < end)).sum())
    achieved = acked / (end - start)
    problems = []
    if p99 is None:
        problems.append("no delivery measured in the hold")
    elif p99 >= target.delivery_p99_ms:
        problems.append(f"delivery p99 {p99:,.0f} ms >= {target.delivery_p99_ms:g} ms")
    if lost:
        problems.append(f"{lost:,} deliveries lost")
    if failed_share > target.max_failed_share:
        problems.append(f"{100 * failed_share:.1f} % of publishes failed")
    if achieved < target.min_achieved_share * rate:
        problems.append(f"only {achieved:,.0f} of {rate:,.0f} msg/s acknowledged")
    held = f"p99 {p99:,.0f} ms, nothing lost, {achieved:,.0f} msg/s acknowledged" if p99 is not None else ""
    reason = "; ".join(problems) if problems else held
    return RateStep(broker=broker, rate=rate, publishers=publishers, subscribers=subscribers,
                    achieved_per_s=achieved, deliveries_per_s=deliveries / (end - start), delivery_p99_ms=p99,
                    lost=lost, failed_share=failed_share, passed=not problems, reason=reason, run_dir=label_dir,
                    seconds=seconds)
