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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from reports import delivery, plots, series
from reports.delivery import DeliveryAnalysis, DeliveryOptions
from reports.html import _CSS, _badge, _e, _num, _table
from reports.records import RunData, load_run
from reports.thresholds import format_value
from reports.verdict import RunVerdict, evaluate_run

COMPARE_SECTIONS = ("runs", "slo", "delivery", "faults", "plots")


@dataclass
class ComparedRun:
    label: str
    run: RunData
    verdict: RunVerdict
    analysis: DeliveryAnalysis | None


def build_comparison(run_dirs: Sequence[str | Path], out: str | Path, slo: Sequence[str] | None = None, *,
                     labels: Sequence[str] | None = None, use_default_slo: bool = True,
                     options: DeliveryOptions | None = None) -> Path:
    """Write compare.html for the runs; returns its path. RecordError for an unreadable run."""
    if len(run_dirs) < 2:
        raise ValueError("a comparison needs at least two run directories")
    options = options or DeliveryOptions()
    runs = [_compared(load_run(d), slo, use_default_slo, options) for d in run_dirs]
    for i, r in enumerate(runs):
        if labels and i < len(labels):
            r.label = labels[i]
    _unique_labels(runs)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_render(runs, options), encoding="utf-8")
    return path


def _compared(run: RunData, slo: Sequence[str] | None, use_default_slo: bool,
              options: DeliveryOptions) -> ComparedRun:
    verdict = evaluate_run(run, slo, use_default_slo=use_default_slo, options=options, write=False)
    try:
        analysis: DeliveryAnalysis | None = delivery.analyze(run, options)
    except Exception as exc:  # the verdicts already say unknown
        analysis = None
        run.warnings.append(f"delivery analysis failed: {exc}")
    label = str(run.meta.stack.get("broker") or run.meta.name or run.run_dir.name)
    return ComparedRun(label, run, verdict, analysis)


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
            f"<title>gauntlet comparison — {_e(title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>{_badge(max(r.verdict.verdict for r in runs))} {_e(title)}</h1></header>"
            + "".join(sections) + "</body></html>\n")


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{_e(title)}</h2>{body}</section>'


def _runs(runs: list[ComparedRun]) -> str:
    rows = []
    for r in runs:
        failed = ", ".join(c.name for c in r.verdict.failed) or "—"
        rows.append([_e(r.label), _badge(r.verdict.verdict), _e(r.run.meta.name), _e(r.run.meta.seed),
                     _num(round(r.run.duration)), _e(str(r.run.run_dir)), _e(failed)])
    return _section("runs", "Runs", _table(["run", "verdict", "name", "seed", "seconds", "directory",
                                            "failed checks"], rows))


def _slo(runs: list[ComparedRun]) -> str:
    conditions: dict[str, None] = {}
    for r in runs:
        for s in r.verdict.slo:
            conditions.setdefault(f"{s.selector}: {s.condition}", None)
    rows = []
    for name in conditions:
        cells = [_e(name)]
        for r in runs:
            match = next((s for s in r.verdict.slo if f"{s.selector}: {s.condition}" == name), None)
            cells.append("—" if match is None else
                         f"{_badge(match.verdict)} {_e(format_value(match.observed, match.unit, match.aggregation))}")
        rows.append(cells)
    return _section("slo", "Latency targets", _table(["target"] + [r.label for r in runs], rows))


_COUNTS = (("owed deliveries", "expected_eventual"), ("lost for good", "lost_eventual"),
           ("owed live", "expected_live"), ("lost live", "lost_live"), ("duplicated", "duplicated"),
           ("unexpected", "unexpected"), ("misrouted", "misrouted"), ("recovered", "recovered"),
           ("late", "late"), ("out of order", "out_of_order"), ("publishes", "publishes"))


def _delivery(runs: list[ComparedRun]) -> str:
    rows = []
    for title, attr in _COUNTS:
        rows.append([_e(title)] + [_num(getattr(r.analysis.counts, attr)) if r.analysis else "—" for r in runs])
    for path in ("same", "cross"):
        for q in (50, 99):
            cells = [_e(f"delivery p{q} {path}-instance (ms)")]
            for r in runs:
                lat = r.analysis.latency if r.analysis else pd.DataFrame(columns=["path", "latency_ms"])
                values = lat.loc[lat["path"] == path, "latency_ms"].to_numpy()
                cells.append(_num(float(np.percentile(values, q))) if len(values) else "—")
            rows.append(cells)
    return _section("delivery", "Delivery", _table([""] + [r.label for r in runs], rows))


def _faults(runs: list[ComparedRun]) -> str:
    rows = []
    for r in runs:
        for f in (r.analysis.recovery if r.analysis else []):
            rows.append([_e(r.label), _e(f.fault_id), _e(f.kind), _e(f.target), _num(f.lost_live_inside),
                         _num(f.lost_eventual_inside),
                         _e(f"{f.first_delivery_s:.2f} s" if f.first_delivery_s is not None else "—"),
                         _e(f"{f.p99_recovered_s:.1f} s" if f.p99_recovered_s is not None else "—"), _e(f.status)])
    body = (_table(["run", "fault", "kind", "target", "lost live inside", "lost for good inside",
                    "first delivery after heal", "p99 recovered after", "recovery"], rows)
            if rows else "<p>No faults in these runs.</p>")
    return _section("faults", "Faults and recovery", body)


def _plots(runs: list[ComparedRun], options: DeliveryOptions) -> str:
    width = series.bucket_seconds(max(max(r.run.duration for r in runs), 1.0))
    spans = {r.label: series.fault_spans(r.run.faults, r.run.t0, r.run.t_end) for r in runs}
    cdf_values, ws_p99, http_p99, lost = {}, {}, {}, {}
    for r in runs:
        t0 = r.run.t0
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
        body += _img(plots.delivery_cdf(series.latency_cdf(cdf_values), options.late_after_s * 1000.0),
                     "delivery latency CDF per run")
    body += _img(plots.runs_over_time(ws_p99, "p99", spans, "delivery latency p99 per run", "ms"),
                 "delivery p99 over time per run")
    body += _img(plots.runs_over_time(http_p99, "p99", spans, "HTTP latency p99 per run (all endpoints)", "ms"),
                 "HTTP p99 over time per run")
    body += _img(plots.runs_over_time(lost, "lost_eventual", spans,
                                      f"deliveries lost for good per {width:g} s, by publish time", "lost"),
                 "loss over time per run")
    return _section("plots", "Side by side", body)


def _img(fig, alt: str) -> str:
    return f'<figure><img alt="{_e(alt)}" src="{plots.to_data_uri(fig)}"></figure>'
