"""Figures of the broker comparison that the run report has no counterpart for.

They follow reports/plots.py (functions of DataFrames returning a Figure, the same
width, fault windows shaded with `plots.shade_faults`) and reuse it where it fits:
latency over time per broker is `plots.latency_over_time` with one panel per broker.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from reports import plots, series

_BROKER_COLUMN = "broker"


def latency_per_broker(samples: dict[str, pd.DataFrame], spans: Sequence[plots.Span], width: float,
                       title: str) -> Figure:
    """p50/p95/p99 over time, one panel per broker; `samples` hold `t` (seconds since the
    load started) and `value` (ms), pooled over the broker's repeats."""
    frames = [pd.DataFrame({"ts": s["t"].to_numpy(dtype="float64"), "value": s["value"].to_numpy(dtype="float64"),
                            _BROKER_COLUMN: broker}) for broker, s in samples.items() if len(s)]
    pooled = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["ts", "value", _BROKER_COLUMN])
    table = series.latency_series(pooled, 0.0, width, group=_BROKER_COLUMN)
    # Panels in the comparison's broker order, not by sample count.
    order = {b: i for i, b in enumerate(samples)}
    table = table.assign(_order=table[_BROKER_COLUMN].map(order)).sort_values(["_order", "t"]).drop(columns="_order")
    return plots.latency_over_time(table, spans, title, max_panels=len(samples), group=_BROKER_COLUMN)


def rate_search(steps: pd.DataFrame, target_ms: float) -> Figure:
    """Delivery p99 against the offered publish rate, one line per broker; sustained steps
    are dots, broken ones crosses; the p99 target is the dashed line."""
    fig, ax = plots.plt.subplots(figsize=(plots.WIDTH, 3.4))
    if not len(steps):
        ax.text(0.5, 0.5, "no rate-search steps", transform=ax.transAxes, ha="center", va="center", color="#888888")
        return fig
    colours = plots.plt.rcParams["axes.prop_cycle"].by_key()["color"]
    shown = steps.dropna(subset=["delivery_p99_ms"])
    for i, (broker, s) in enumerate(shown.groupby("broker", sort=False)):
        s = s.sort_values("rate")
        colour = colours[i % len(colours)]
        ax.plot(s["rate"], s["delivery_p99_ms"], lw=1.0, color=colour, alpha=0.6)
        ok = s["passed"].to_numpy(dtype=bool)
        ax.scatter(s["rate"][ok], s["delivery_p99_ms"][ok], color=colour, marker="o", s=30, label=f"{broker} held")
        ax.scatter(s["rate"][~ok], s["delivery_p99_ms"][~ok], color=colour, marker="x", s=40,
                   label=f"{broker} broke")
    ax.axhline(target_ms, color="#c62828", lw=1, ls="--")
    ax.text(1.0, target_ms, f" p99 target {target_ms:g} ms", transform=ax.get_yaxis_transform(), fontsize=7,
            va="center", color="#c62828")
    ax.set_xscale("log", base=2)
    rates = sorted(set(shown["rate"].to_numpy(dtype="float64")))
    ax.set_xticks(rates, [f"{r:,.0f}" for r in rates])
    ax.xaxis.set_minor_locator(NullLocator())
    values = shown["delivery_p99_ms"].to_numpy(dtype="float64")
    if len(values) and np.nanmax(values) / max(np.nanmin(values), 0.1) > 50:
        ax.set_yscale("log")
    ax.set_xlabel("offered publish rate (messages/s, all publishers)")
    ax.set_ylabel("delivery p99 (ms)")
    ax.set_title("fan-out rate search: each step a short fanout run", fontsize=9, loc="left")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, ncol=3)
    fig.tight_layout()
    return fig
