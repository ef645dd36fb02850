"""Report figures: each a function of DataFrames returning a matplotlib Figure.

Every time plot takes `spans` (from series.fault_spans) and shades and labels the
fault windows on it, so a latency bump can be read against the fault that caused it.
Figures render with the Agg backend (no display) and are embedded as PNG data URIs.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

Span = tuple[float, float, str, str]  # start, end (run seconds), label, kind

WIDTH = 11.0
DPI = 90
_FAULT_COLOURS = {"kill": "#d62728", "partition": "#ff7f0e", "latency": "#9467bd", "pause": "#8c564b"}
_PCT_STYLE = {"p50": ("-", 1.0), "p95": ("--", 1.2), "p99": ("-", 1.8)}


def to_data_uri(fig: Figure) -> str:
    """PNG bytes of the figure as a data URI; closes the figure."""
    buf = io.BytesIO()
    # Layout is fixed already (fit): bbox_inches="tight" would measure it all again.
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def fit(fig: Figure, *, left: float = 0.75, right: float = 0.75, top: float = 0.3, bottom: float = 0.5,
        gap: float = 0.45) -> Figure:
    """Fixed margins in inches: room for tick labels and the y label (left), the
    labels of target lines (right), panel titles or a suptitle (top), the x label
    (bottom) and each panel's title (gap). tight_layout would find about the same by
    drawing the whole figure once more than the PNG needs, which is most of a
    report's drawing time; every figure here has the same kind of labels, so the
    margins are known."""
    w, h = fig.get_size_inches()
    rows = max(1, len(fig.axes) and max(ax.get_subplotspec().get_geometry()[0]
                                        for ax in fig.axes if ax.get_subplotspec() is not None))
    usable = h - top - bottom
    panel = (usable - gap * (rows - 1)) / rows
    fig.subplots_adjust(left=left / w, right=1.0 - right / w, top=1.0 - top / h, bottom=bottom / h,
                        hspace=gap / panel if rows > 1 and panel > 0 else 0.2)
    return fig


def shade_faults(ax: plt.Axes, spans: Sequence[Span], label: bool = True) -> None:
    """Shade each fault window; label it once, at the top of the axes."""
    for start, end, text, kind in spans:
        colour = _FAULT_COLOURS.get(kind, "#7f7f7f")
        ax.axvspan(start, max(end, start + 1e-3), color=colour, alpha=0.15, lw=0)
        ax.axvline(start, color=colour, lw=0.8, alpha=0.6)
        if label:
            ax.text(start, 1.0, f" {text}", transform=ax.get_xaxis_transform(), va="top", ha="left",
                    fontsize=7.5, color=colour, clip_on=False)


def _empty(ax: plt.Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in this run", transform=ax.transAxes, ha="center", va="center",
            color="#888888")


def _time_axes(rows: int, height: float = 2.6, sharex: bool = True) -> tuple[Figure, list[plt.Axes]]:
    fig, axes = plt.subplots(rows, 1, figsize=(WIDTH, height * rows), sharex=sharex, squeeze=False)
    return fig, list(axes[:, 0])


def latency_over_time(series: pd.DataFrame, spans: Sequence[Span], title: str,
                      targets: dict[str, float] | None = None, max_panels: int = 6,
                      group: str = "endpoint") -> Figure:
    """One panel per group (endpoint): p50/p95/p99 lines, target lines dashed."""
    groups = (series.groupby(group)["count"].sum().sort_values(ascending=False).index.tolist()[:max_panels]
              if len(series) else [])
    fig, axes = _time_axes(max(1, len(groups)), height=2.2)
    if not groups:
        _empty(axes[0], "samples")
    for ax, name in zip(axes, groups):
        s = series[series[group] == name]
        for pct, (style, width) in _PCT_STYLE.items():
            ax.plot(s["t"], s[pct], style, lw=width, label=pct, drawstyle="steps-post")
        for label, value in (targets or {}).items():
            ax.axhline(value, color="#444444", ls=":", lw=1)
            ax.text(1.0, value, f" {label}", transform=ax.get_yaxis_transform(), fontsize=7, va="center")
        ax.set_ylabel("ms")
        ax.set_title(str(name), fontsize=9, loc="left")
        top = np.nanmax(s["p99"].to_numpy(dtype="float64")) if len(s) else 1.0
        if np.isfinite(top) and top > 0 and s["p50"].median() > 0 and top / s["p50"].median() > 50:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        shade_faults(ax, spans)
    if groups:
        axes[0].legend(loc="upper right", fontsize=8, ncol=3)
    axes[-1].set_xlabel("seconds since run start")
    fig.suptitle(title, x=0.01, ha="left", fontsize=11)
    fit(fig, top=0.6)
    return fig


def throughput(series: pd.DataFrame, spans: Sequence[Span]) -> Figure:
    """Requests per second per endpoint (top) and errors per second (bottom)."""
    fig, (top, bottom) = _time_axes(2)
    if not len(series):
        _empty(top, "requests")
    for name, s in series.groupby("endpoint"):
        top.plot(s["t"], s["per_s"], lw=1.2, label=str(name), drawstyle="steps-post")
        if s["errors_per_s"].sum() > 0:
            bottom.plot(s["t"], s["errors_per_s"], lw=1.2, label=str(name), drawstyle="steps-post")
    top.set_ylabel("per second")
    top.set_title("throughput", fontsize=9, loc="left")
    bottom.set_ylabel("errors / s")
    bottom.set_title("errors (failed requests; publishes failed or unknown)", fontsize=9, loc="left")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        shade_faults(ax, spans)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=8)
    bottom.set_xlabel("seconds since run start")
    fit(fig)
    return fig


def users_and_sockets(series: pd.DataFrame, spans: Sequence[Span]) -> Figure:
    fig, (ax,) = _time_axes(1)
    if not len(series):
        _empty(ax, "user samples")
    else:
        ax.plot(series["t"], series["users"], lw=1.5, label="users")
        ax.plot(series["t"], series["sockets"], lw=1.5, label="open sockets")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_title("users and open sockets (as the load generator saw them)", fontsize=9, loc="left")
    ax.grid(alpha=0.3)
    shade_faults(ax, spans)
    ax.set_xlabel("seconds since run start")
    fit(fig)
    return fig


def load_per_replica(sockets: pd.DataFrame, requests: pd.DataFrame, frames: pd.DataFrame,
                     spans: Sequence[Span]) -> Figure:
    """Open sockets, HTTP requests/s and delivered frames/s per replica."""
    fig, axes = _time_axes(3, height=2.1)
    panels = ((sockets, "sockets", "open sockets"), (requests, "requests_per_s", "HTTP requests / s answered"),
              (frames, "frames_per_s", "frames / s delivered"))
    for ax, (frame, column, title) in zip(axes, panels):
        if not len(frame):
            _empty(ax, title)
        for name, s in frame.groupby("instance"):
            ax.plot(s["t"], s[column], lw=1.2, label=str(name), drawstyle="steps-post")
        ax.set_title(title + " per replica", fontsize=9, loc="left")
        ax.grid(alpha=0.3)
        shade_faults(ax, spans)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=8, ncol=4)
    axes[-1].set_xlabel("seconds since run start")
    fit(fig)
    return fig


def delivery_cdf(cdf: pd.DataFrame, target_ms: float | None = None) -> Figure:
    """Cumulative distribution of delivery latency, one line per path."""
    fig, ax = plt.subplots(figsize=(WIDTH, 3.2))
    labels = [c for c in cdf.columns if c != "fraction" and cdf[c].notna().any()]
    if not labels:
        _empty(ax, "deliveries")
    for label in labels:
        ax.plot(cdf[label], cdf["fraction"], lw=1.6, label=label)
    if labels:
        positive = np.concatenate([cdf[c].to_numpy() for c in labels])
        if (positive > 0).all() and np.nanmax(positive) / max(np.nanmin(positive), 1e-3) > 20:
            ax.set_xscale("log")
        ax.legend(loc="lower right", fontsize=8)
    for q in (0.5, 0.95, 0.99):
        ax.axhline(q, color="#999999", lw=0.6, ls=":")
        ax.text(1.0, q, f" p{int(q * 100)}", transform=ax.get_yaxis_transform(), ha="left", va="center", fontsize=7)
    if target_ms and labels:
        top = float(np.nanmax(np.concatenate([cdf[c].to_numpy() for c in labels])))
        if target_ms <= top * 1.5:
            ax.axvline(target_ms, color="#d62728", lw=1, ls="--")
            ax.text(target_ms, 0.02, f" late > {target_ms:g} ms", color="#d62728", fontsize=8)
        else:  # far beyond every sample: a line there would squash the curves
            ax.text(0.99, 0.02, f"late > {target_ms:g} ms: none", transform=ax.transAxes, ha="right",
                    color="#2e7d32", fontsize=8)
    ax.set_xlabel("delivery latency (ms), live first deliveries")
    ax.set_ylabel("fraction delivered")
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    fit(fig, right=0.5)
    return fig


def loss_over_time(series: pd.DataFrame, spans: Sequence[Span], width: float) -> Figure:
    """Lost (live, for good) by publish time and duplicated by arrival, per bucket."""
    fig, (ax,) = _time_axes(1, height=2.8)
    if not len(series):
        _empty(ax, "deliveries")
    else:
        # Steps over a full bucket grid, not bars: hundreds of bars are slow to draw.
        t = series["t"].to_numpy(dtype="float64")
        grid = np.arange(t.min(), t.max() + width, width)
        at = np.searchsorted(grid, t)
        edges = np.append(grid, grid[-1] + width)
        for column, colour, label, sign in (("lost_live", "#ff7f0e", "lost live", 1),
                                            ("lost_eventual", "#d62728", "lost for good", 1),
                                            ("duplicated", "#1f77b4", "duplicated (below 0)", -1)):
            values = np.zeros(len(grid))
            values[at] = sign * series[column].to_numpy(dtype="float64")
            ax.stairs(values, edges, fill=True, color=colour, alpha=0.85, label=label)
        ax.axhline(0, color="#333333", lw=0.8)
        ax.legend(loc="upper right", fontsize=8, ncol=3)
    ax.set_ylabel("per bucket")
    ax.set_title(f"lost and duplicated deliveries ({width:g} s buckets)", fontsize=9, loc="left")
    ax.grid(alpha=0.3)
    shade_faults(ax, spans)
    ax.set_xlabel("seconds since run start")
    fit(fig)
    return fig


def matrix_heatmap(matrix: pd.DataFrame, value: str = "lost_live", total: str = "expected_live") -> Figure:
    """Publisher replica (rows) × subscriber replica (columns): share delivered, counts annotated."""
    fig, ax = plt.subplots(figsize=(6.5, 4.6))
    if not len(matrix):
        _empty(ax, "addressed deliveries")
        ax.set_axis_off()
        return fig
    lost = matrix.pivot_table(index="origin", columns="sub_instance", values=value, aggfunc="sum", fill_value=0,
                              observed=True)
    owed = matrix.pivot_table(index="origin", columns="sub_instance", values=total, aggfunc="sum", fill_value=0,
                              observed=True).reindex_like(lost).fillna(0)
    # Columns nobody was owed anything in (subscribers offline at publish time) say nothing.
    used = owed.sum(axis=0) > 0
    if used.any():
        lost, owed = lost.loc[:, used], owed.loc[:, used]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(owed.to_numpy() > 0, 1.0 - lost.to_numpy() / owed.to_numpy(), np.nan)
    image = ax.imshow(share, cmap="RdYlGn", vmin=min(0.9, np.nanmin(share) if np.isfinite(share).any() else 0.9),
                      vmax=1.0, aspect="auto")
    for i in range(share.shape[0]):
        for j in range(share.shape[1]):
            n_owed, n_lost = int(owed.iat[i, j]), int(lost.iat[i, j])
            text = f"{n_lost:,} lost\nof {n_owed:,}" if n_owed else "—"
            ax.text(j, i, text, ha="center", va="center", fontsize=8)
    ax.set_xticks(range(share.shape[1]), [str(c) for c in lost.columns])
    ax.set_yticks(range(share.shape[0]), [str(c) for c in lost.index])
    ax.set_xlabel("subscriber's replica at publish time")
    ax.set_ylabel("publisher's replica")
    ax.set_title("live delivery by replica pair (share delivered)", fontsize=9, loc="left")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fit(fig, left=0.75, right=0.6, top=0.35, bottom=0.65)
    return fig


def runs_over_time(lines: dict[str, pd.DataFrame], column: str, spans: dict[str, Sequence[Span]], title: str,
                   ylabel: str) -> Figure:
    """One line per run (a `t` and `column` frame each); each run's faults shaded in its colour."""
    fig, (ax,) = _time_axes(1, height=3.0)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if not any(len(frame) for frame in lines.values()):
        _empty(ax, "samples")
    for i, (label, frame) in enumerate(lines.items()):
        colour = colours[i % len(colours)]
        if len(frame):
            ax.plot(frame["t"], frame[column], lw=1.4, color=colour, label=label, drawstyle="steps-post")
        for start, end, text, _ in spans.get(label, ()):
            ax.axvspan(start, max(end, start + 1e-3), color=colour, alpha=0.10, lw=0)
            ax.text(start, 1.0 - 0.08 * i, f" {text} ({label})", transform=ax.get_xaxis_transform(), va="top",
                    fontsize=7, color=colour)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title, fontsize=9, loc="left")
    ax.set_ylabel(ylabel)
    ax.set_xlabel("seconds since run start")
    ax.grid(alpha=0.3)
    fit(fig)
    return fig
