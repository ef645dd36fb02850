"""A comparison report across runs: the same scenario against several brokers.

`build_comparison([run_a, run_b, ...], out)` evaluates each run (without rewriting its
summary.json) and writes one self-contained compare.html: verdicts side by side, each
latency target's observed value per run, delivery counts per run, recovery per fault,
and overlaid plots (delivery latency CDF, delivery p99 over time, HTTP p99 over time,
loss over time). Runs are labelled by their broker (run.json stack.broker), else by
name. The plots reuse reports/series.py and reports/plots.py on each run's tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from reports import plots, series
from reports.comparison import ComparedRun, compared_run
from reports.delivery import DeliveryOptions
from reports.html import CSS, badge, esc, figure, num, recovery_cells, section, table
from reports.records import RunData, load_run, write_atomic
from reports.thresholds import format_value
from reports.verdict import latency_summary

COMPARE_SECTIONS = ("runs", "slo", "delivery", "faults", "plots")


def build_comparison(run_dirs: Sequence[str | Path], out: str | Path, slo: Sequence[str] | None = None, *,
                     labels: Sequence[str] | None = None, use_default_slo: bool = True,
                     options: DeliveryOptions | None = None) -> Path:
    """Write compare.html for the runs; returns its path. RecordError for an unreadable run."""
    if len(run_dirs) < 2:
        raise ValueError("a comparison needs at least two run directories")
    options = options or DeliveryOptions()
    runs = []
    for i, run_dir in enumerate(run_dirs):
        run = load_run(run_dir)
        label = labels[i] if labels and i < len(labels) else _default_label(run)
        runs.append(compared_run(run, label, label, slo, use_default_slo=use_default_slo, options=options))
    _unique_labels(runs)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, _render(runs, options))


def _default_label(run: RunData) -> str:
    return str(run.meta.stack.get("broker") or run.meta.name or run.run_dir.name)


def _unique_labels(runs: list[ComparedRun]) -> None:
    seen: dict[str, int] = {}
    for r in runs:
        n = seen.get(r.label, 0)
        seen[r.label] = n + 1
        if n:
            r.label = f"{r.label} #{n + 1}"


def _render(runs: list[ComparedRun], options: DeliveryOptions) -> str:
    labels = [r.label for r in runs]
    sections = [_runs(runs), _slo(runs), _delivery(runs), _faults(runs), _plots(runs, options)]
    title = " vs ".join(labels)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>gauntlet comparison — {esc(title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{badge(max(r.verdict.verdict for r in runs))} {esc(title)}</h1></header>"
            + "".join(sections) + "</body></html>\n")


def _runs(runs: list[ComparedRun]) -> str:
    rows = []
    for r in runs:
        failed = ", ".join(c.name for c in r.verdict.failed) or "—"
        rows.append([esc(r.label), badge(r.verdict.verdict), esc(r.run.meta.name), esc(r.run.meta.seed),
                     num(round(r.run.duration)), esc(str(r.run.run_dir)), esc(failed)])
    return section("runs", "Runs", table(["run", "verdict", "name", "seed", "seconds", "directory",
                                          "failed checks"], rows))


def _slo(runs: list[ComparedRun]) -> str:
    conditions: dict[str, None] = {}
    for r in runs:
        for s in r.verdict.slo:
            conditions.setdefault(f"{s.selector}: {s.condition}", None)
    rows = []
    for name in conditions:
        cells = [esc(name)]
        for r in runs:
            match = next((s for s in r.verdict.slo if f"{s.selector}: {s.condition}" == name), None)
            cells.append("—" if match is None else
                         f"{badge(match.verdict)} {esc(format_value(match.observed, match.unit, match.aggregation))}")
        rows.append(cells)
    return section("slo", "Latency targets", table(["target"] + [r.label for r in runs], rows))


_COUNTS = (("owed deliveries", "expected_eventual"), ("lost for good", "lost_eventual"),
           ("owed live", "expected_live"), ("lost live", "lost_live"), ("duplicated", "duplicated"),
           ("unexpected", "unexpected"), ("misrouted", "misrouted"), ("recovered", "recovered"),
           ("late", "late"), ("out of order", "out_of_order"), ("publishes", "publishes"))


def _delivery(runs: list[ComparedRun]) -> str:
    rows = []
    for title, attr in _COUNTS:
        rows.append([esc(title)] + [num(getattr(r.analysis.counts, attr)) if r.analysis else "—" for r in runs])
    summaries = [latency_summary(r.analysis.latency) if r.analysis else {} for r in runs]
    for path in ("same", "cross"):
        for q in ("p50", "p99"):
            rows.append([esc(f"delivery {q} {path}-instance (ms)")]
                        + [num(s[path][q]) if s else "—" for s in summaries])
    return section("delivery", "Delivery", table([""] + [r.label for r in runs], rows))


def _faults(runs: list[ComparedRun]) -> str:
    rows = []
    for r in runs:
        for f in (r.analysis.recovery if r.analysis else []):
            rows.append([esc(r.label), esc(f.fault_id), esc(f.kind), esc(f.target), num(f.lost_live_inside),
                         num(f.lost_eventual_inside), *recovery_cells(f), esc(f.status)])
    body = (table(["run", "fault", "kind", "target", "lost live inside", "lost for good inside",
                   "first delivery after heal", "deliveries complete after", "latency back after", "recovery"],
                  rows)
            if rows else "<p>No faults in these runs.</p>")
    return section("faults", "Faults and recovery", body)


def _plots(runs: list[ComparedRun], options: DeliveryOptions) -> str:
    # Aligned on each run's load start: run.json's start includes bringing the stack
    # up, which takes longer for some brokers than for others.
    starts = {r.label: r.run.load_span()[0] for r in runs}
    width = series.bucket_seconds(max(max(r.run.t_end - starts[r.label] for r in runs), 1.0))
    spans = {r.label: series.fault_spans(r.run.faults, starts[r.label], r.run.t_end) for r in runs}
    cdf_values, ws_p99, http_p99, lost = {}, {}, {}, {}
    for r in runs:
        t0 = starts[r.label]
        if r.analysis is not None:
            lat = r.analysis.latency
            cdf_values[r.label] = lat["latency_ms"].to_numpy()
            samples = pd.DataFrame({"ts": lat["ts"].to_numpy(), "value": lat["latency_ms"].to_numpy(), "all": "all"})
            ws_p99[r.label] = series.latency_series(samples, t0, width, group="all")
            lost[r.label] = series.delivery_series(r.analysis.pairs, r.analysis.duplicates, t0, width)
        http = series.http_latency_samples(r.run.http).assign(endpoint="all")
        http_p99[r.label] = series.latency_series(http, t0, width)
    body = ""
    if cdf_values:
        body += figure(plots.delivery_cdf(series.latency_cdf(cdf_values), options.late_after_s * 1000.0),
                       "delivery latency CDF per run")
    body += figure(plots.runs_over_time(ws_p99, "p99", spans, "delivery latency p99 per run", "ms"),
                   "delivery p99 over time per run")
    body += figure(plots.runs_over_time(http_p99, "p99", spans, "HTTP latency p99 per run (all endpoints)", "ms"),
                   "HTTP p99 over time per run")
    body += figure(plots.runs_over_time(lost, "lost_eventual", spans,
                                        f"deliveries lost for good per {width:g} s, by publish time", "lost"),
                   "loss over time per run")
    note = '<p class="sub">Times are seconds since each run\'s load started.</p>'
    return section("plots", "Side by side", note + body)
