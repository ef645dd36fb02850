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
from reports.comparison import BrokerFigures, Comparison, compare, load_span, write_figures
from reports.compare_verdict import Recommendation, answers, duration_text, rate_text, recommend
from reports.delivery import DeliveryOptions
from reports.html import _CSS, _badge, _e, _num, _table
from reports.verdict import compose

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
    path = comparison.directory / REPORT_FILE
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render(comparison, said, advice), encoding="utf-8")
    tmp.replace(path)
    return comparison, path


def render(c: Comparison, said: list[str], advice: Recommendation) -> str:
    plan = c.plan
    title = f"{' vs '.join(b.broker for b in c.brokers) or 'no runs'}: {Path(plan.scenario).name}"
    if plan.timeline:
        title += f" under {Path(plan.timeline).stem}"
    verdict = compose(b.verdict for b in c.brokers)
    nav = " · ".join(f'<a href="#{s}">{s}</a>' for s in SECTION_IDS)
    order = " ".join(f"{r.broker}#{r.repeat}" for r in plan.runs)
    sub = (f"{_when(plan.started)} · seed {plan.seed} · {plan.repeats} repeat(s) per broker, interleaved "
           f"({_e(order)}) · {plan.replicas} replicas" + (" · interrupted" if plan.interrupted else ""))
    sections = [_answer(c, said, advice), _table_section(c), _latency(c), _rate(c)]
    if c.runs:
        sections += [run_compare._runs(c.runs), run_compare._slo(c.runs), run_compare._delivery(c.runs),
                     run_compare._faults(c.runs)]
    sections.append(_notes(c))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>gauntlet broker comparison — {_e(title)}</title><style>{_CSS}{_EXTRA_CSS}</style></head><body>"
            f"<header><h1>{_badge(verdict)} {_e(title)}</h1><p class=\"sub\">{sub}</p><nav>{nav}</nav></header>"
            + "".join(sections) + "</body></html>\n")


def _when(started: float | None) -> str:
    if started is None:
        return "start unknown"
    return dt.datetime.fromtimestamp(started, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{_e(title)}</h2>{body}</section>'


def _img(fig, alt: str) -> str:
    return f'<figure><img alt="{_e(alt)}" src="{plots.to_data_uri(fig)}"></figure>'


def _answer(c: Comparison, said: list[str], advice: Recommendation) -> str:
    items = [f'<li class="recommendation"><b>{_e(advice.headline)}</b></li>']
    items += [f"<li>{_e(t)}</li>" for t in advice.tradeoffs]
    items += [f"<li>{_e(s)}</li>" for s in said]
    return _section("answer", "Which broker, and what each loses", '<ul class="headline">' + "".join(items) + "</ul>")


def _row(metric: str, title: str, figures: list[BrokerFigures], value) -> str:
    cells = "".join(f'<td data-broker="{_e(b.broker)}">{value(b)}</td>' for b in figures)
    return f'<tr data-metric="{_e(metric)}"><td>{_e(title)}</td>{cells}</tr>'


def _ms(value: float | None) -> str:
    return _num(value, 1)


def _table_section(c: Comparison) -> str:
    b = c.brokers
    if not b:
        return _section("table", "Side by side", "<p>No broker finished a run.</p>")
    rows = [
        _row("verdict", "verdict (worst over repeats)", b, lambda f: _badge(f.verdict)),
        _row("runs", "runs", b, lambda f: "<br>".join(
            f'<a href="{_e(d)}/report.html">{_e(Path(d).name)}</a>' for d in f.run_dirs)),
        _row("throughput", "throughput: publishes acknowledged / s", b, lambda f: _num(f.throughput_per_s, 1)),
        _row("deliveries_per_s", "deliveries received / s", b, lambda f: _num(f.deliveries_per_s, 1)),
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
        _row("expected_live", "deliveries owed live", b, lambda f: _num(f.expected_live)),
        _row("lost_live", "lost live", b, lambda f: _num(f.lost_live)),
        _row("lost_eventual", "lost for good", b, lambda f: _num(f.lost_eventual)),
        _row("duplicated", "duplicated", b, lambda f: _num(f.duplicated)),
        _row("late", f"late (> {c.options.late_after_s:g} s)", b, lambda f: _num(f.late)),
    ]
    for effect in b[0].faults:
        fid, label = effect.fault_id, effect.label

        def fault_cell(f: BrokerFigures, fid=fid) -> str:
            e = next((x for x in f.faults if x.fault_id == fid), None)
            if e is None:
                return "—"
            recovery = f"{e.recovered_s:.1f} s" if e.recovered_s is not None else e.status
            return (f"lost {e.lost_live:,} live / {e.lost_eventual:,} for good<br>late {e.late:,} of "
                    f"{e.owed_live:,}; p99 {_e(duration_text(e.inside.p99))}<br>recovery {_e(recovery)}")

        rows.append(_row(f"fault_{fid}", f"{fid} {label} (+{effect.start_s:.0f} s, {effect.seconds:.0f} s)", b,
                         fault_cell))
    if any(f.rate for f in b):
        rows.append(_row("sustained_rate", "highest fan-out rate sustained", b, _rate_cell))
    for check in b[0].checks:
        rows.append(_row(f"check_{check.name}", f"check: {check.name}", b,
                         lambda f, n=check.name: _verdict_of(f.checks, n)))
    names = list(dict.fromkeys(t.name for f in b for t in f.targets))
    for name in names:
        rows.append(_row(f"slo {name}", f"target: {name}", b, lambda f, n=name: _verdict_of(f.targets, n, True)))
    head = "<tr><th></th>" + "".join(f'<th data-broker="{_e(f.broker)}">{_e(f.broker)}</th>' for f in b) + "</tr>"
    table = f'<table class="compare" id="compare-table"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
    return _section("table", "Side by side", table)


def _rate_cell(f: BrokerFigures) -> str:
    if f.rate is None:
        return "—"
    text = f"≥ {rate_text(f.rate.sustained)}" if f.rate.sustained else "none held"
    if f.rate.broke_at:
        text += f"<br>broke at {rate_text(f.rate.broke_at)}"
    return text + f"<br><small>{_e(f.rate.stopped)}</small>"


def _verdict_of(rows, name: str, observed: bool = False) -> str:
    row = next((r for r in rows if r.name == name), None)
    if row is None:
        return "—"
    text = " / ".join(row.observed) if observed else ""
    return f"{_badge(row.verdict)} {_e(text)}".strip()


def _aligned(c: Comparison, frame_of) -> dict[str, pd.DataFrame]:
    """Per broker, samples (t since its run's load start, value) pooled over repeats."""
    out: dict[str, list[pd.DataFrame]] = {b.broker: [] for b in c.brokers}
    for r in c.runs:
        broker = str(r.run.meta.stack.get("broker") or r.label.split(" #")[0])
        start = c.load_start.get(r.label, r.run.t0)
        ts, value = frame_of(r)
        out.setdefault(broker, []).append(pd.DataFrame({"t": ts - start, "value": value}))
    return {b: pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["t", "value"])
            for b, parts in out.items()}


def _delivery_samples(r) -> tuple[np.ndarray, np.ndarray]:
    lat = r.analysis.latency
    return lat["sent_ts"].to_numpy(dtype="float64"), lat["latency_ms"].to_numpy(dtype="float64")


def _publish_samples(r) -> tuple[np.ndarray, np.ndarray]:
    pub = r.run.pub
    ok = pub["outcome"].astype(object).to_numpy() == "ok"
    sent = pub["ts_sent"].to_numpy(dtype="float64")[ok]
    return sent, (pub["ts_ack"].to_numpy(dtype="float64")[ok] - sent) * 1000.0


def _latency(c: Comparison) -> str:
    if not c.runs:
        return _section("latency", "Latency", "<p>No runs.</p>")
    first = c.runs[0]
    start, end = load_span(first.run)
    spans = series.fault_spans(first.run.faults, start, end)
    width = series.bucket_seconds(max(max(load_span(r.run)[1] - load_span(r.run)[0] for r in c.runs), 1.0))
    delivery_samples = _aligned(c, _delivery_samples)
    publish_samples = _aligned(c, _publish_samples)
    cdf = series.latency_cdf({b: s["value"].to_numpy() for b, s in delivery_samples.items()})
    body = _img(plots.delivery_cdf(cdf, c.options.late_after_s * 1000.0), "delivery latency CDF per broker")
    body += _img(compare_plots.latency_per_broker(
        delivery_samples, spans, width, "delivery latency per broker, by send time (faults of the first run shaded)"),
        "delivery latency over time per broker")
    publish_p99 = {b: series.latency_series(s.rename(columns={"t": "ts"}).assign(all="all"), 0.0, width, group="all")
                   for b, s in publish_samples.items()}
    body += _img(plots.runs_over_time(publish_p99, "p99", {b: spans for b in publish_p99},
                                      "publish latency p99 per broker (acknowledged publishes)", "ms"),
                 "publish p99 over time per broker")
    note = ("<p class=\"sub\">Times are seconds since each run's load started; with repeats, each broker's "
            "samples are pooled over its runs.</p>")
    return _section("latency", "Latency", note + body)


def _rate(c: Comparison) -> str:
    results = [b.rate for b in c.brokers if b.rate is not None]
    target = c.plan.rate_target
    if not results or target is None:
        return _section("rate", "Fan-out rate search",
                        "<p>Not run (<code>gauntlet compare --max-rate-search</code> runs it).</p>")
    steps = pd.DataFrame([s.__dict__ for r in results for s in r.steps])
    rows = [[_e(s.broker), _num(s.rate, 0), _num(s.publishers), _num(s.subscribers), _num(s.achieved_per_s, 1),
             _num(s.deliveries_per_s, 0), _ms(s.delivery_p99_ms), _num(s.lost), f"{100 * s.failed_share:.2f} %",
             _badge("pass" if s.passed else "fail"), _e(s.reason), f'<a href="{_e(s.run_dir)}/report.html">run</a>']
            for r in results for s in r.steps]
    summary = "".join(f"<li><b>{_e(r.broker)}</b>: {_e(_rate_line(r))}</li>" for r in results)
    rule = (f"<p>A step holds when delivery p99 &lt; {target.delivery_p99_ms:g} ms, nothing is lost, at most "
            f"{100 * target.max_failed_share:g} % of publishes fail and at least "
            f"{100 * target.min_achieved_share:g} % of the offered rate is acknowledged. The rate doubles until a "
            f"step breaks, then bisects; steps of all brokers are interleaved.</p>")
    body = (f'<ul class="headline">{summary}</ul>{rule}'
            + _img(compare_plots.rate_search(steps, target.delivery_p99_ms), "rate search")
            + _table(["broker", "offered msg/s", "publishers", "subscribers", "acked msg/s", "deliveries/s",
                      "delivery p99 ms", "lost", "failed", "", "why", ""], rows))
    return _section("rate", "Fan-out rate search", body)


def _rate_line(r) -> str:
    held = f"sustains {rate_text(r.sustained)}" if r.sustained else "no step held"
    broke = f", broke at {rate_text(r.broke_at)}" if r.broke_at else ""
    return f"{held}{broke} ({len(r.steps)} steps; {r.stopped})"


def _notes(c: Comparison) -> str:
    items = list(c.notes)
    for r in c.runs:
        items += [f"{r.label}: {w}" for w in r.run.warnings]
    body = "<ul class=\"notes\">" + "".join(f"<li>{_e(n)}</li>" for n in items) + "</ul>" if items else "<p>None.</p>"
    return _section("notes", "Notes", body)
