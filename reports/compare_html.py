"""The broker comparison report: one self-contained compare.html in the comparison
directory, answering "which broker should we use, and what does each lose under this
fault" at the top, then showing the numbers it came from.

Sections (stable ids): `answer` (recommendation, trade-offs, one sentence per broker and
fault), `table` (one column per broker: throughput, publish and delivery latency
p50/p95/p99, loss, recovery per fault, sustained fan-out rate, every check and target),
`latency` (delivery latency CDFs overlaid; delivery latency over time per broker with
the fault windows; publish p99 over time), `rate` (the fan-out rate search), then the
per-run detail of reports/compare.py (`runs`, `slo`, `delivery`, `faults`) and `notes`.
Inline CSS (the run report's) and PNG data URIs only: it opens offline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from reports import compare as run_compare
from reports import compare_plots, plots, series
from reports.comparison import BrokerFigures, ComparedRun, Comparison, compare, write_figures
from reports.compare_verdict import Recommendation, answers, duration_text, rate_text, recommend
from reports.delivery import DeliveryOptions
from reports.html import CSS, badge, esc, figure, num, section, table
from reports.records import write_atomic
from reports.check import compose

REPORT_FILE = "compare.html"
SECTION_IDS = ("answer", "table", "latency", "rate", "runs", "slo", "delivery", "faults", "notes")
_EXTRA_CSS = "table.compare td,table.compare th{text-align:right}table.compare td:first-child{text-align:left}"


def build_compare_report(compare_dir: str | Path, slo: Sequence[str] | None = None, *, use_default_slo: bool = True,
                         options: DeliveryOptions | None = None) -> tuple[Comparison, Path]:
    """Read the comparison directory, write figures.json and compare.html; returns the
    comparison and the report's path. RecordError for an unreadable directory or run."""
    comparison = compare(compare_dir, slo, use_default_slo=use_default_slo, options=options)
    said = answers(comparison.brokers)
    advice = recommend(comparison.brokers)
    write_figures(comparison, said, advice.to_dict())
    return comparison, write_atomic(comparison.directory / REPORT_FILE, render(comparison, said, advice))


def render(c: Comparison, said: list[str], advice: Recommendation) -> str:
    plan = c.plan
    title = f"{' vs '.join(b.broker for b in c.brokers) or 'no runs'}: {Path(plan.scenario).name}"
    if plan.timeline:
        title += f" under {Path(plan.timeline).stem}"
    verdict = compose(b.verdict for b in c.brokers)
    nav = " · ".join(f'<a href="#{s}">{s}</a>' for s in SECTION_IDS)
    order = " ".join(f"{r.broker}#{r.repeat}" for r in plan.runs)
    sub = (f"{_when(plan.started)} · seed {plan.seed} · {plan.repeats} repeat(s) per broker, interleaved "
           f"({esc(order)}) · {plan.replicas} replicas" + (" · interrupted" if plan.interrupted else ""))
    sections = [_answer(c, said, advice), _table_section(c), _latency(c), _rate(c)]
    if c.runs:
        sections += [run_compare._runs(c.runs), run_compare._slo(c.runs), run_compare._delivery(c.runs),
                     run_compare._faults(c.runs)]
    sections.append(_notes(c))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>gauntlet broker comparison — {esc(title)}</title><style>{CSS}{_EXTRA_CSS}</style></head><body>"
            f"<header><h1>{badge(verdict)} {esc(title)}</h1><p class=\"sub\">{sub}</p><nav>{nav}</nav></header>"
            + "".join(sections) + "</body></html>\n")


def _when(started: float | None) -> str:
    if started is None:
        return "start unknown"
    return dt.datetime.fromtimestamp(started, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _answer(c: Comparison, said: list[str], advice: Recommendation) -> str:
    items = [f'<li class="recommendation"><b>{esc(advice.headline)}</b></li>']
    items += [f"<li>{esc(t)}</li>" for t in advice.tradeoffs]
    items += [f"<li>{esc(s)}</li>" for s in said]
    return section("answer", "Which broker, and what each loses", '<ul class="headline">' + "".join(items) + "</ul>")


def _row(metric: str, title: str, figures: list[BrokerFigures], value) -> str:
    cells = "".join(f'<td data-broker="{esc(b.broker)}">{value(b)}</td>' for b in figures)
    return f'<tr data-metric="{esc(metric)}"><td>{esc(title)}</td>{cells}</tr>'


def _ms(value: float | None) -> str:
    return num(value, 1)


def _table_section(c: Comparison) -> str:
    b = c.brokers
    if not b:
        return section("table", "Side by side", "<p>No broker finished a run.</p>")
    rows = [
        _row("verdict", "verdict (worst over repeats)", b, lambda f: badge(f.verdict)),
        _row("runs", "runs", b, lambda f: "<br>".join(
            f'<a href="{esc(d)}/report.html">{esc(Path(d).name)}</a>' for d in f.run_dirs)),
        _row("throughput", "throughput: publishes acknowledged / s", b, lambda f: num(f.throughput_per_s, 1)),
        _row("deliveries_per_s", "deliveries received / s", b, lambda f: num(f.deliveries_per_s, 1)),
        _row("publishes", "publishes (acknowledged)", b, lambda f: f"{f.publishes:,} ({f.acknowledged:,})"),
    ]
    for q in ("p50", "p95", "p99"):
        rows.append(_row(f"publish_{q}", f"publish latency {q} (ms)", b, lambda f, q=q: _ms(getattr(f.publish, q))))
    for q in ("p50", "p95", "p99"):
        rows.append(_row(f"delivery_{q}", f"delivery latency {q} (ms)", b,
                         lambda f, q=q: _ms(getattr(f.delivery, q))))
    rows.append(_row("delivery_steady_p99", "delivery p99 outside faults (ms)", b,
                     lambda f: _ms(f.delivery_steady.p99)))
    if c.plan.repeats > 1:
        rows.append(_row("delivery_p99_per_repeat", "delivery p99 per repeat (ms)", b,
                         lambda f: " / ".join(_ms(v) for v in f.delivery_p99_per_repeat)))
    rows += [
        _row("expected_live", "deliveries owed live", b, lambda f: num(f.expected_live)),
        _row("lost_live", "lost live", b, lambda f: num(f.lost_live)),
        _row("lost_eventual", "lost for good", b, lambda f: num(f.lost_eventual)),
        _row("duplicated", "duplicated", b, lambda f: num(f.duplicated)),
        _row("late", f"late (> {c.options.late_after_s:g} s)", b, lambda f: num(f.late)),
    ]
    # A fault or check one broker's runs lack still gets its row; that broker shows "—".
    effects = {e.fault_id: e for f in reversed(b) for e in f.faults}
    for effect in sorted(effects.values(), key=lambda e: e.start_s):
        fid = effect.fault_id

        def fault_cell(f: BrokerFigures, fid=fid) -> str:
            e = next((x for x in f.faults if x.fault_id == fid), None)
            if e is None:
                return "—"
            recovery = f"{e.recovered_s:.1f} s" if e.recovered_s is not None else e.status
            return (f"lost {e.lost_live:,} live / {e.lost_eventual:,} for good<br>late {e.late:,} of "
                    f"{e.owed_live:,}; p99 {esc(duration_text(e.inside.p99))}<br>recovery {esc(recovery)}")

        rows.append(_row(f"fault_{fid}", f"{fid} {effect.label} (+{effect.start_s:.0f} s, {effect.seconds:.0f} s)",
                         b, fault_cell))
    if any(f.rate for f in b):
        rows.append(_row("sustained_rate", "highest fan-out rate sustained", b, _rate_cell))
    for name in dict.fromkeys(row.name for f in b for row in f.checks):
        rows.append(_row(f"check_{name}", f"check: {name}", b, lambda f, n=name: _verdict_of(f.checks, n)))
    names = list(dict.fromkeys(t.name for f in b for t in f.targets))
    for name in names:
        rows.append(_row(f"slo {name}", f"target: {name}", b, lambda f, n=name: _verdict_of(f.targets, n, True)))
    head = "<tr><th></th>" + "".join(f'<th data-broker="{esc(f.broker)}">{esc(f.broker)}</th>' for f in b) + "</tr>"
    grid = f'<table class="compare" id="compare-table"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
    return section("table", "Side by side", grid)


def _rate_cell(f: BrokerFigures) -> str:
    if f.rate is None:
        return "—"
    text = f"≥ {rate_text(f.rate.sustained)}" if f.rate.sustained else "none held"
    if f.rate.broke_at:
        text += f"<br>broke at {rate_text(f.rate.broke_at)}"
    return text + f"<br><small>{esc(f.rate.stopped)}</small>"


def _verdict_of(rows, name: str, observed: bool = False) -> str:
    row = next((r for r in rows if r.name == name), None)
    if row is None:
        return "—"
    text = " / ".join(row.observed) if observed else ""
    return f"{badge(row.verdict)} {esc(text)}".strip()


def _aligned(c: Comparison, frame_of) -> dict[str, pd.DataFrame]:
    """Per broker, samples (t since its run's load start, value) pooled over repeats."""
    out: dict[str, list[pd.DataFrame]] = {b.broker: [] for b in c.brokers}
    for r in c.runs:
        ts, value = frame_of(r)
        out.setdefault(r.broker, []).append(pd.DataFrame({"t": ts - r.run.load_span()[0], "value": value}))
    return {b: pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["t", "value"])
            for b, parts in out.items()}


def _delivery_samples(r: ComparedRun) -> tuple[np.ndarray, np.ndarray]:
    lat = r.analysis.latency
    return lat["sent_ts"].to_numpy(dtype="float64"), lat["latency_ms"].to_numpy(dtype="float64")


def _publish_samples(r: ComparedRun) -> tuple[np.ndarray, np.ndarray]:
    return series.ok_publish_latency(r.run.pub)


def _latency(c: Comparison) -> str:
    if not c.runs:
        return section("latency", "Latency", "<p>No runs.</p>")
    first = c.runs[0]
    start, end = first.run.load_span()
    spans = series.fault_spans(first.run.faults, start, end)
    longest = max(hi - lo for lo, hi in (r.run.load_span() for r in c.runs))
    width = series.bucket_seconds(max(longest, 1.0))
    delivery_samples = _aligned(c, _delivery_samples)
    publish_samples = _aligned(c, _publish_samples)
    cdf = series.latency_cdf({b: s["value"].to_numpy() for b, s in delivery_samples.items()})
    body = figure(plots.delivery_cdf(cdf, c.options.late_after_s * 1000.0), "delivery latency CDF per broker")
    body += figure(compare_plots.latency_per_broker(
        delivery_samples, spans, width, "delivery latency per broker, by send time (faults of the first run shaded)"),
        "delivery latency over time per broker")
    publish_p99 = {b: series.latency_series(s.rename(columns={"t": "ts"}).assign(all="all"), 0.0, width, group="all")
                   for b, s in publish_samples.items()}
    body += figure(plots.runs_over_time(publish_p99, "p99", {b: spans for b in publish_p99},
                                        "publish latency p99 per broker (acknowledged publishes)", "ms"),
                   "publish p99 over time per broker")
    note = ("<p class=\"sub\">Times are seconds since each run's load started; with repeats, each broker's "
            "samples are pooled over its runs.</p>")
    return section("latency", "Latency", note + body)


def _rate(c: Comparison) -> str:
    results = [b.rate for b in c.brokers if b.rate is not None]
    target = c.plan.rate_target
    if not results or target is None:
        return section("rate", "Fan-out rate search",
                       "<p>Not run (<code>gauntlet compare --max-rate-search</code> runs it).</p>")
    steps = pd.DataFrame([s.__dict__ for r in results for s in r.steps])
    rows = [[esc(s.broker), num(s.rate, 0), num(s.publishers), num(s.subscribers), num(s.achieved_per_s, 1),
             num(s.deliveries_per_s, 0), _ms(s.delivery_p99_ms), num(s.lost), f"{100 * s.failed_share:.2f} %",
             badge("pass" if s.passed else "fail"), esc(s.reason), f'<a href="{esc(s.run_dir)}/report.html">run</a>']
            for r in results for s in r.steps]
    summary = "".join(f"<li><b>{esc(r.broker)}</b>: {esc(_rate_line(r))}</li>" for r in results)
    rule = (f"<p>A step holds when delivery p99 &lt; {target.delivery_p99_ms:g} ms, nothing is lost, at most "
            f"{100 * target.max_failed_share:g} % of publishes fail and at least "
            f"{100 * target.min_achieved_share:g} % of the offered rate is acknowledged. The rate doubles until a "
            f"step breaks, then bisects; steps of all brokers are interleaved.</p>")
    body = (f'<ul class="headline">{summary}</ul>{rule}'
            + figure(compare_plots.rate_search(steps, target.delivery_p99_ms), "rate search")
            + table(["broker", "offered msg/s", "publishers", "subscribers", "acked msg/s", "deliveries/s",
                     "delivery p99 ms", "lost", "failed", "", "why", ""], rows))
    return section("rate", "Fan-out rate search", body)


def _rate_line(r) -> str:
    held = f"sustains {rate_text(r.sustained)}" if r.sustained else "no step held"
    broke = f", broke at {rate_text(r.broke_at)}" if r.broke_at else ""
    return f"{held}{broke} ({len(r.steps)} steps; {r.stopped})"


def _notes(c: Comparison) -> str:
    items = list(c.notes)
    for r in c.runs:
        items += [f"{r.label}: {w}" for w in r.run.warnings]
    body = "<ul class=\"notes\">" + "".join(f"<li>{esc(n)}</li>" for n in items) + "</ul>" if items else "<p>None.</p>"
    return section("notes", "Notes", body)
