"""Figures of the resource samples: CPU and memory per component, connections per
replica, each over time with the fault windows shaded (reports/plots.py conventions)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from reports.plots import Span, _empty, _time_axes, shade_faults
from reports.resources import MACHINE, OTHER

MAX_LINES = 12


def _lines(frame: pd.DataFrame, column: str, t0: float) -> list[tuple[str, pd.DataFrame]]:
    """Components by their mean of `column`, biggest first, at most MAX_LINES."""
    if not len(frame):
        return []
    data = frame[np.isfinite(frame[column].to_numpy(dtype="float64"))]
    order = data.groupby(data["component"].astype(object))[column].mean().sort_values(ascending=False)
    out = []
    for name in order.index[:MAX_LINES]:
        rows = data[(data["component"].astype(object) == name).to_numpy()]
        out.append((str(name), pd.DataFrame({"t": rows["ts"].to_numpy(dtype="float64") - t0,
                                             "v": rows[column].to_numpy(dtype="float64")})))
    return out


def cpu_and_memory(resources: pd.DataFrame, spans: Sequence[Span], t0: float, cores: int) -> Figure:
    """Top: CPU (cores) per component, the machine's busy cores dashed, its limit dotted.
    Bottom: resident memory per component."""
    fig, (cpu_ax, mem_ax) = _time_axes(2, height=2.8)
    ours = resources[~resources["component"].astype(object).isin([MACHINE, OTHER]).to_numpy()]
    lines = _lines(ours, "cpu", t0)
    if not lines:
        _empty(cpu_ax, "resource samples")
        _empty(mem_ax, "resource samples")
    for name, s in lines:
        cpu_ax.plot(s["t"], s["v"], lw=1.2, label=name, drawstyle="steps-post")
    for name, style in ((MACHINE, "--"), (OTHER, ":")):
        rows = resources[(resources["component"].astype(object) == name).to_numpy()]
        if len(rows):
            cpu_ax.plot(rows["ts"].to_numpy(dtype="float64") - t0, rows["cpu"].to_numpy(dtype="float64"), style,
                        color="#333333" if name == MACHINE else "#999999", lw=1.3,
                        label="machine (all busy cores)" if name == MACHINE else "outside this run",
                        drawstyle="steps-post")
    if lines:
        cpu_ax.axhline(cores, color="#c62828", ls=":", lw=1)
        cpu_ax.text(1.0, cores, f" {cores} cores", transform=cpu_ax.get_yaxis_transform(), fontsize=7,
                    va="center", color="#c62828")
        cpu_ax.axhline(1.0, color="#888888", ls=":", lw=0.8)
        cpu_ax.text(1.0, 1.0, " one core", transform=cpu_ax.get_yaxis_transform(), fontsize=7, va="center")
        for name, s in _lines(ours, "rss_mb", t0):
            mem_ax.plot(s["t"], s["v"], lw=1.2, label=name, drawstyle="steps-post")
    cpu_ax.set_ylabel("cores")
    cpu_ax.set_title("CPU per component (sampled from outside each second)", fontsize=9, loc="left")
    mem_ax.set_ylabel("MB")
    mem_ax.set_title("resident memory per component", fontsize=9, loc="left")
    for ax in (cpu_ax, mem_ax):
        ax.grid(alpha=0.3)
        shade_faults(ax, spans)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize=7, ncol=5, framealpha=0.8)
    mem_ax.set_xlabel("seconds since run start")
    fig.tight_layout()
    return fig


def dependency_connections(conns: pd.DataFrame, spans: Sequence[Span], t0: float) -> Figure:
    """One panel per dependency: each replica's open connections to it."""
    deps = sorted(str(d) for d in conns["dependency"].astype(object).unique()) if len(conns) else []
    fig, axes = _time_axes(max(1, len(deps)), height=2.0)
    if not deps:
        _empty(axes[0], "connection samples")
    for ax, dep in zip(axes, deps):
        rows = conns[(conns["dependency"].astype(object) == dep).to_numpy()]
        for name, s in rows.groupby(rows["replica"].astype(object)):
            ax.plot(s["ts"].to_numpy(dtype="float64") - t0, s["connections"].to_numpy(dtype="float64"), lw=1.2,
                    label=str(name), drawstyle="steps-post")
        ax.set_title(f"open connections to {dep} per replica", fontsize=9, loc="left")
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
        shade_faults(ax, spans)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=8, ncol=6)
    axes[-1].set_xlabel("seconds since run start")
    fig.tight_layout()
    return fig
