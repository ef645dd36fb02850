"""The run report: one self-contained report.html, readable in a minute.

Top to bottom it answers: did the run pass, did the system deliver, where did latency
break its targets, what did each fault do. Every image is an inline PNG data URI and
the CSS is inline, so the file opens offline and can be attached to a CI job as is.
Sections carry stable ids (verdict, slo, delivery, faults, latency, throughput, load,
delivery-latency, loss, matrix, metadata, exports) for tools and tests.

The time series behind the plots are written to csv/ next to it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from reports import delivery, order, plots, replicas, resources_html, series
from reports.delivery import DeliveryAnalysis, DeliveryOptions
from reports.html_parts import badge, esc, figure, num, section, table
from reports.phases import AFTER_HEAL, FAULT, STEADY
from reports.records import RunData, load_run, write_atomic
from reports.thresholds import format_value, holds, observed_by_phase
from reports.check import Verdict
from reports.verdict import RunVerdict, evaluate_run, latency_summary

SECTION_IDS = ("verdict", "slo", "delivery", "order", "faults", "replicas", "latency", "throughput", "load", "resources",
               "delivery-latency", "loss", "matrix", "metadata", "exports")
_PHASE_NAMES = {STEADY: "steady", FAULT: "in faults", AFTER_HEAL: "after heal"}


def build_report(run_dir: str | Path, slo: Sequence[str] | None = None, *, use_default_slo: bool = True,
                 options: DeliveryOptions | None = None) -> Path:
    """Evaluate the run (summary.json, junit.xml) and write report.html; returns its path."""
    _, path = report_run(run_dir, slo, use_default_slo=use_default_slo, options=options)
    return path


def report_run(run_dir: str | Path | RunData, slo: Sequence[str] | None = None, *, use_default_slo: bool = True,
               options: DeliveryOptions | None = None) -> tuple[RunVerdict, Path]:
    """Like build_report, also returning the verdict (for the CLI's table)."""
    run = run_dir if isinstance(run_dir, RunData) else load_run(run_dir)
    verdict = evaluate_run(run, slo, use_default_slo=use_default_slo, options=options)
    return verdict, write_report(run, verdict, options)


def write_report(run: RunData, verdict: RunVerdict, options: DeliveryOptions | None = None) -> Path:
    options = options or DeliveryOptions()
    try:
        analysis: DeliveryAnalysis | None = delivery.analyze(run, options)
    except Exception as exc:  # the verdicts already say unknown; the report still shows the rest
        analysis = None
        run.warnings.append(f"delivery analysis failed: {type(exc).__name__}: {exc}")
    page = _Page(run, verdict, analysis, options)
    return write_atomic(run.run_dir / "report.html", page.render())


def recovery_cells(r: delivery.FaultRecovery) -> list[str]:
    """First delivery after the heal, deliveries complete again, delivery p99 back to
    steady, as table cells."""
    def seconds(value: float | None, digits: int = 1) -> str:
        return esc(f"{value:.{digits}f} s" if value is not None else "—")

    return [seconds(r.first_delivery_s, 2), seconds(r.delivery_recovered_s), seconds(r.latency_recovered_s)]


class _Page:
    def __init__(self, run: RunData, verdict: RunVerdict, analysis: DeliveryAnalysis | None,
                 options: DeliveryOptions) -> None:
        self.run, self.v, self.a, self.o = run, verdict, analysis, options
        self.t0 = run.t0
        self.width = series.bucket_seconds(max(run.duration, 1.0))
        self.spans = series.fault_spans(run.faults, self.t0, run.t_end)
        self.csv_dir = run.run_dir / "csv"
        self.exports: list[str] = []
        # Both the headline and the targets table show where each target broke.
        self.slo_phases = [observed_by_phase(run, r, options) for r in verdict.slo]

    # -- page ----------------------------------------------------------------------

    def render(self) -> str:
        self.csv_dir.mkdir(exist_ok=True)
        sections = [
            self._verdict(), self._slo(), self._delivery(), self._order(), self._faults(), self._replicas(), self._latency(), self._throughput(),
            self._load(), self._resources(), self._delivery_latency(), self._loss(), self._matrix(), self._metadata(),
        ]
        sections.append(self._exports())  # last: lists the files the others wrote
        name = self.run.meta.name or self.run.run_dir.name
        nav = " · ".join(f'<a href="#{s}">{s.replace("-", " ")}</a>' for s in SECTION_IDS)
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>gauntlet report — {esc(name)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{badge(self.v.verdict)} {esc(name)}</h1>"
            f"<p class=\"sub\">{esc(self._when())} · exit code {self.v.exit_code}</p>"
            f"{self._measurement()}"
            f"{self._headline()}<nav>{nav}</nav></header>"
            + "".join(sections) + "</body></html>\n"
        )

    def _measurement(self) -> str:
        """Whether the load generator kept up, right under the title."""
        m = self.v.measurement
        if m is None:
            return ""
        cls = {True: "ok", False: "bad", None: "sub"}[m.valid]
        return f'<p id="measurement" class="{cls}">{esc(m.headline())}</p>'

    def _when(self) -> str:
        start = dt.datetime.fromtimestamp(self.t0, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{start}, {self.run.duration:,.0f} s"

    def _headline(self) -> str:
        items = []
        failed = [c for c in self.v.checks if c.verdict is Verdict.FAIL]
        unknown = [c for c in self.v.checks if c.verdict is Verdict.UNKNOWN]
        if failed:
            items.append(f"<b>{len(failed)} of {len(self.v.checks)} checks failed</b>: "
                         + ", ".join(esc(c.name) for c in failed[:8]) + ("…" if len(failed) > 8 else ""))
        else:
            items.append(f"All {len(self.v.checks)} checks passed" + (f", {len(unknown)} unknown" if unknown else ""))
        if self.a is not None and self.a.counts.expected_eventual:
            c = self.a.counts
            share = 100.0 * c.delivered_eventual / c.expected_eventual
            fault_live = c.lost_live - int(self.a.by_phase.loc[STEADY, "lost_live"])
            items.append(
                f"<b>Delivery</b>: {c.delivered_eventual:,} of {c.expected_eventual:,} owed deliveries made "
                f"({share:.2f} %); <b>{c.lost_eventual:,} lost for good</b>; live {c.lost_live:,} missed "
                f"({fault_live:,} during faults or heal windows); {c.duplicated:,} duplicated, "
                f"{c.unexpected:,} unexpected, {c.misrouted:,} misrouted, {c.recovered:,} recovered"
                + (f", {c.corrupted:,} corrupted of {c.intact_checked:,} payloads checked" if c.intact_checked else "")
                + ".")
        if self.a is not None and self.a.order is not None:
            items.append(f"<b>Order</b>: {esc(order.describe(self.a.order.summaries).removeprefix('order: '))}")
        broken = [(r, phases) for r, phases in zip(self.v.slo, self.slo_phases) if r.verdict is Verdict.FAIL]
        for r, phases in broken[:5]:
            where = [f"{_PHASE_NAMES[p]} {format_value(x, r.unit, r.aggregation)}" for p, x in phases.items()
                     if x is not None and not holds(r, x)]
            items.append(f"<b>Target missed</b>: {esc(r.selector)} {esc(r.aggregation)} = "
                         f"{esc(format_value(r.observed, r.unit, r.aggregation))}, target {esc(r.op)} "
                         f"{esc(format_value(r.target, r.unit, r.aggregation))}"
                         + (f" — broken {esc(', '.join(where))}" if where else ""))
        for note in self.v.notes:
            items.append(f"<b>Note</b>: {esc(note)}")
        if self.a is not None:
            for f in self.a.recovery:
                items.append(f"<b>Fault {esc(f.fault_id)}</b> {esc(f.kind)} {esc(f.target)}: "
                             f"{f.lost_live_inside:,} of {f.expected_live_inside:,} live deliveries lost inside, "
                             f"{f.lost_eventual_inside:,} for good; {esc(self._recovery_text(f))}")
        return '<ul class="headline">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>"

    @staticmethod
    def _recovery_text(f: delivery.FaultRecovery) -> str:
        return delivery.recovery_summary(f).split(": ", 1)[1]

    # -- sections ------------------------------------------------------------------

    def _export(self, frame: pd.DataFrame, name: str) -> None:
        # Full precision: epoch seconds need more digits than any %g would keep.
        frame.to_csv(self.csv_dir / name, index=False)
        self.exports.append(name)

    def _verdict(self) -> str:
        rows = [[badge(c.verdict), esc(c.name), esc(c.summary)] for c in self.v.checks]
        return section("verdict", "Checks", table(["verdict", "check", "summary"], rows, "checks"))

    def _slo(self) -> str:
        rows = []
        for r, phases in zip(self.v.slo, self.slo_phases):
            cells = []
            for p in (STEADY, FAULT, AFTER_HEAL):
                x = phases.get(p)
                cls = "" if x is None else ("ok" if holds(r, x) else "bad")
                cells.append(f'<span class="{cls}">{esc(format_value(x, r.unit, r.aggregation))}</span>'
                             if p in phases else "")
            rows.append([badge(r.verdict), esc(r.selector), esc(f"{r.aggregation} {r.op} "
                         f"{format_value(r.target, r.unit, r.aggregation)}"),
                         f"<b>{esc(format_value(r.observed, r.unit, r.aggregation))}</b>", num(r.samples), *cells,
                         esc(r.source)])
        if not rows:
            body = "<p>No latency targets were set.</p>"
        else:
            body = table(["", "metric", "target", "observed", "samples", "steady", "in faults", "after heal",
                          "source"], rows, "slo")
            self._export(pd.DataFrame([r.to_dict() for r in self.v.slo]).drop(columns=["tags"]), "slo.csv")
        return section("slo", "Latency targets (SLO)", body)

    def _delivery(self) -> str:
        a = self.a
        if a is None:
            return section("delivery", "Delivery", "<p>Delivery analysis failed; see the checks.</p>")
        c = a.counts
        totals = [
            ("publishes (ok / fail / unknown)", f"{c.publishes:,} ({c.acknowledged:,} / {c.failed:,} / {c.unknown:,})"),
            ("subscribers, frames received", f"{c.subscribers:,}, {c.frames:,}"),
            ("owed live / delivered live / lost live", f"{c.expected_live:,} / {c.delivered_live:,} / {c.lost_live:,}"),
            ("owed eventually / delivered / lost for good",
             f"{c.expected_eventual:,} / {c.delivered_eventual:,} / {c.lost_eventual:,}"),
            ("duplicated (extra frames)", f"{c.duplicated:,} ({c.duplicate_frames:,})"),
            ("resume overlap frames (expected)", f"{c.resume_overlap_frames:,}"),
            ("unexpected keys (frames)", f"{c.unexpected:,} ({c.unexpected_frames:,})"),
            ("misrouted to another user", f"{c.misrouted:,}"),
            ("payloads corrupted / digests checked", f"{c.corrupted:,} / {c.intact_checked:,}"),
            ("recovered (unknown outcome, seen)", f"{c.recovered:,}"),
            ("failed publishes seen anyway", f"{c.failed_seen:,}"),
            (f"late (> {self.o.late_after_s:g} s)", f"{c.late:,}"),
            ("out of real-time order", f"{c.out_of_order:,}"),
            ("out of publisher sequence (informational)", f"{c.out_of_sequence:,}"),
            ("out of id order (informational)", f"{c.out_of_id_order:,}"),
        ]
        rows = [[esc(k), f"<b>{esc(v)}</b>"] for k, v in totals]
        phase_rows = []
        for phase, row in a.by_phase.iterrows():
            phase_rows.append([esc(_PHASE_NAMES.get(str(phase), phase)), num(int(row["expected_live"])),
                               num(int(row["lost_live"])), num(int(row["expected_eventual"])),
                               num(int(row["lost_eventual"])), num(int(row["duplicated"])), num(int(row["late"])),
                               num(row["latency_p99_ms"])])
        lat = latency_summary(a.latency)
        lat_rows = [[esc(k), num(v["count"]), num(v["p50"]), num(v["p95"]), num(v["p99"]), num(v["max"])]
                    for k, v in lat.items()]
        notes = "".join(f"<li>{esc(n)}</li>" for n in a.notes)
        self._export(a.by_phase.reset_index(), "delivery_by_phase.csv")
        self._export(a.lost.head(100_000), "delivery_lost.csv")
        body = (
            '<div class="cols"><div>' + table(["", "count"], rows, "kv") + "</div><div>"
            + "<h3>By phase</h3>"
            + table(["phase", "owed live", "lost live", "owed", "lost for good", "duplicated", "late", "p99 ms"],
                    phase_rows)
            + "<h3>Delivery latency (ms), live first deliveries</h3>"
            + table(["path", "count", "p50", "p95", "p99", "max"], lat_rows)
            + "</div></div>"
            + (f"<ul class=\"notes\">{notes}</ul>" if notes else "")
            + f'<p class="sub">Live: the subscriber had one connection open from the publish until its '
              f"acknowledgement + {self.o.grace_s:g} s. Eventually: it was connected before the publish and again "
              "after it, so a resume could bring the message. Phases: a fault window, the "
              f"{self.o.heal_window_s:g} s after its heal, and steady state otherwise.</p>"
        )
        return section("delivery", "Delivery", body)

    def _order(self) -> str:
        if self.a is None or self.a.order is None:
            return section("order", "Order", "<p>Delivery analysis failed; see the checks.</p>")
        o = self.a.order
        rows = []
        for name, s in o.summaries.items():
            phases = [num(s.by_phase.get(p, 0)) + f' <span class="sub">of {num(s.judged_by_phase.get(p, 0))}</span>'
                      for p in (STEADY, FAULT, AFTER_HEAL)]
            rows.append([esc(s.title), esc("requirement" if s.required else "informational"),
                         esc("yes" if s.checked else "no"), num(s.judged), f"<b>{num(s.violations)}</b>", *phases,
                         num(s.subscribers), esc(s.reason)])
        body = table(["order", "", "checked", "judged", "late", "steady", "in faults", "after heal",
                      "subscribers", "what it means"], rows, "order")
        shown = o.violations
        if len(shown):
            self._export(shown.head(100_000), "order_violations.csv")
            # Real-time first (the requirement), steady state first within it.
            rank = (shown["order"].map({order.REALTIME: 0, order.SEQUENCE: 1, order.IDS: 2}).to_numpy() * 3
                    + shown["phase"].astype(object).map({STEADY: 0, AFTER_HEAL: 1, FAULT: 2}).to_numpy())
            head = shown.iloc[np.argsort(rank, kind="stable")[:order.EXAMPLES]]
            ex = [[esc(r.order), esc(f"{r.ts - self.t0:,.3f} s"), esc(r.sub), esc(r.key), esc(r.behind),
                   esc(r.origin), esc(r.instance), esc(_PHASE_NAMES.get(str(r.phase), r.phase)),
                   esc(f"{r.margin_ms:,.1f}" if r.margin_ms == r.margin_ms else "—")]
                  for r in head.itertuples()]
            body += (f"<h3>Late deliveries (first {len(ex)} of {len(shown):,}; all in csv/order_violations.csv)</h3>"
                     + table(["order", "received", "subscriber", "key", "behind", "publisher replica",
                              "subscriber replica", "phase", "acknowledged before the other was sent (ms)"], ex))
        pairs = o.by_pair
        if len(pairs):
            self._export(pairs, "order_by_pair.csv")
            late = pairs[pairs["late_realtime"] > 0]
            if len(late):
                pr = [[esc(r.origin), esc(r.instance), esc(_PHASE_NAMES.get(str(r.phase), r.phase)),
                       num(int(r.judged_realtime)), num(int(r.late_realtime))] for r in late.itertuples()]
                body += "<h3>Real-time order by replica pair</h3>" + table(
                    ["publisher replica", "subscriber replica", "phase", "judged", "late"], pr)
        body += ('<p class="sub">Judged per subscriber connection, on live first deliveries of messages addressed '
                 "to it. Real-time: a message acknowledged before another was sent must be received before it; "
                 "a violation's phase is the worse of its send's and its receipt's. The default target "
                 "<code>delivery_out_of_order{phase:steady}: count==0</code> fails a run on any steady-state "
                 "violation.</p>")
        return section("order", "Order", body)

    def _faults(self) -> str:
        if not self.run.faults:
            return section("faults", "Faults", "<p>No faults in this run.</p>")
        recovery = {r.fault_id: r for r in self.a.recovery} if self.a is not None else {}
        rows, export = [], []
        for f in self.run.faults:
            r = recovery.get(f.id)
            end = f.end_or(self.run.t_end)
            window = f"{f.start - self.t0:,.1f}–{end - self.t0:,.1f} s ({end - f.start:,.1f} s)"
            cells = [esc(f.id), esc(f.kind), esc(f.target), esc(window), esc(f.outcome)]
            if r is not None:
                cells += [num(r.expected_live_inside), num(r.lost_live_inside), num(r.lost_eventual_inside),
                          num(r.lost_live_after_heal), *recovery_cells(r),
                          f'{esc(r.status)}<br><span class="sub">{esc(r.reason)}</span>']
                export.append(r.to_dict())
            else:
                cells += ["—"] * 8
            rows.append(cells)
        if export:
            self._export(pd.DataFrame(export), "faults.csv")
        body = table(["id", "kind", "target", "window", "journal", "owed live inside", "lost live inside",
                      "lost for good inside", "lost live after heal", "first delivery after heal",
                      "deliveries complete after", "latency back after", "recovery"], rows, "faults")
        body += ('<p class="sub">A fault has recovered when, after its heal, deliveries are complete again '
                 "(from the first message after the last one an owed subscriber missed live) and delivery "
                 f"latency is back (the first {self.o.rolling_window_s:g} s window whose p99 is within "
                 f"{self.o.recovery_factor:g}× the steady p99 before the fault, over deliveries to or from the "
                 f"target replica, cross-instance), both within the {self.o.heal_window_s:g} s heal window.</p>")
        return section("faults", "Faults and recovery", body)

    def _replicas(self) -> str:
        """Every replica exit, what asked for it, and the log tail of each unasked one."""
        life = replicas.lifecycle(self.run)
        if not life.recorded:
            return section("replicas", "Replica health", f"<p>{esc(replicas.NOT_RECORDED)}.</p>")
        if not life.exits:
            return section("replicas", "Replica health",
                           f"<p>{esc(', '.join(life.replicas))}: no replica exited during the run.</p>")
        rows = [[badge(Verdict.PASS if e.asked else Verdict.FAIL), esc(e.replica), esc(f"{e.at_s:,.1f} s"),
                 esc(e.how), esc(e.fault_id or "—"), esc(e.asked_by or "nothing: the app's own exit")]
                for e in life.exits]
        body = table(["", "replica", "at", "exit", "during fault", "asked for by"], rows, "replicas")
        for e in life.unasked:
            body += (f"<h3>{esc(e.replica)} at {esc(f'{e.at_s:,.1f} s')} ({esc(e.how)}): the last lines of its "
                     f"log</h3><pre>{esc(chr(10).join(e.log_tail) or '(its log is empty)')}</pre>")
        body += ('<p class="sub">An exit is asked for when the harness stopped that replica (a fault\'s signal, '
                 "a restart, a scale-in, the teardown) or a fault that ends replica processes was aimed at it; "
                 "any other exit is the app's own and fails the replicas check.</p>")
        return section("replicas", "Replica health", body)

    def _latency(self) -> str:
        http = series.latency_series(series.http_latency_samples(self.run.http), self.t0, self.width)
        pub = series.latency_series(series.publish_latency_samples(self.run.pub), self.t0, self.width)
        ws = (series.latency_series(series.delivery_latency_samples(self.a.latency), self.t0, self.width)
              if self.a is not None else pd.DataFrame(columns=pub.columns))
        self._export(pd.concat([http, pub, ws], ignore_index=True), "latency.csv")
        targets = {f"{r.aggregation} target": r.target for r in self.v.slo
                   if r.metric == "http_req_duration" and not r.tags and r.aggregation.startswith("p(")}
        body = figure(plots.latency_over_time(http, self.spans, "HTTP latency per endpoint", targets),
                      "HTTP latency over time per endpoint")
        body += figure(plots.latency_over_time(pub, self.spans,
                                               "publish latency: raw (from send) and corrected (from schedule)"),
                       "publish latency over time, raw and corrected")
        body += figure(plots.latency_over_time(ws, self.spans, "WebSocket delivery latency"),
                       "delivery latency over time")
        return section("latency", "Latency over time", body)

    def _throughput(self) -> str:
        data = series.throughput_series(self.run.http, self.run.pub, self.t0, self.width)
        self._export(data, "throughput.csv")
        return section("throughput", "Throughput and errors",
                       figure(plots.throughput(data, self.spans), "throughput and errors over time"))

    def _load(self) -> str:
        users = series.users_series(self.run.users, self.t0, self.width)
        sockets = series.sockets_per_instance(self.run.conn, self.t0, self.width, self.run.t_end)
        answered = self.run.http[self.run.http["instance"].notna()]
        requests = series.rate_per_instance(answered["ts"], answered["instance"], self.t0, self.width,
                                            "requests_per_s")
        frames = series.rate_per_instance(self.run.recv["ts"], self.run.recv["instance"], self.t0, self.width,
                                          "frames_per_s")
        self._export(users, "users.csv")
        per_replica = sockets.merge(requests, on=["t", "instance"], how="outer").merge(
            frames, on=["t", "instance"], how="outer").sort_values(["t", "instance"])
        self._export(per_replica, "replicas.csv")
        body = figure(plots.users_and_sockets(users, self.spans), "users and open sockets over time")
        body += figure(plots.load_per_replica(sockets, requests, frames, self.spans), "load per replica over time")
        return section("load", "Users, sockets and load per replica", body)

    def _resources(self) -> str:
        try:
            body = resources_html.body(self.run, self.spans, self.t0, self._export, self.o.heal_window_s)
        except Exception as exc:  # the rest of the report still stands
            body = f"<p>Resource summary failed: {esc(type(exc).__name__)}: {esc(exc)}</p>"
        return section("resources", "Resources: CPU, memory and connections per component", body)

    def _delivery_latency(self) -> str:
        if self.a is None:
            return section("delivery-latency", "Delivery latency distribution", "<p>—</p>")
        lat = self.a.latency
        by = {"all": lat["latency_ms"].to_numpy()}
        for path in ("same", "cross"):
            values = lat.loc[lat["path"] == path, "latency_ms"].to_numpy()
            if len(values):
                by[f"{path}-instance"] = values
        cdf = series.latency_cdf(by)
        self._export(cdf, "delivery_latency_cdf.csv")
        return section("delivery-latency", "Delivery latency distribution",
                       figure(plots.delivery_cdf(cdf, self.o.late_after_s * 1000.0),
                                    "delivery latency CDF, same vs cross instance"))

    def _loss(self) -> str:
        if self.a is None:
            return section("loss", "Lost and duplicated over time", "<p>—</p>")
        data = series.delivery_series(self.a.pairs, self.a.duplicates, self.t0, self.width)
        self._export(data, "delivery.csv")
        return section("loss", "Lost and duplicated over time",
                       figure(plots.loss_over_time(data, self.spans, self.width),
                                    "lost and duplicated deliveries over time"))

    def _matrix(self) -> str:
        if self.a is None:
            return section("matrix", "Publisher × subscriber replica", "<p>—</p>")
        m = self.a.matrix
        self._export(m, "matrix.csv")
        attribution = self.a.attribution
        note = f'<p class="notes">{esc(attribution.note)}</p>' if attribution and attribution.note else ""
        if attribution is not None and not attribution.available:
            # A matrix of `?` says nothing; the line above says why there is none.
            return section("matrix", "Publisher × subscriber replica", note)
        totals = (m.groupby(["origin", "sub_instance"], observed=True)[
            ["expected_live", "delivered_live", "lost_live", "expected_eventual", "lost_eventual"]].sum().reset_index()
                  if len(m) else m)
        rows = [[esc(r.origin), esc(r.sub_instance), num(int(r.expected_live)), num(int(r.delivered_live)),
                 num(int(r.lost_live)), num(int(r.expected_eventual)), num(int(r.lost_eventual))]
                for r in totals.itertuples()]
        body = ('<div class="cols"><div>' + figure(plots.matrix_heatmap(m), "cross-instance delivery matrix")
                + "</div><div>" + table(["publisher", "subscriber", "owed live", "delivered live", "lost live",
                                         "owed", "lost for good"], rows) + "</div></div>")
        return section("matrix", "Publisher × subscriber replica", note + body)

    def _metadata(self) -> str:
        m = self.run.meta
        counts = {k: len(getattr(self.run, k)) for k in ("http", "pub", "recv", "conn", "users")}
        rows = [
            ("name", m.name), ("run directory", str(self.run.run_dir)), ("seed", m.seed),
            ("start", self._when()), ("command", " ".join(m.argv)),
            ("workers", ", ".join(self.run.workers)), ("records", ", ".join(f"{k} {v:,}" for k, v in counts.items())),
        ]
        kv = [[esc(k), esc(v)] for k, v in rows]
        blocks = ""
        shown = {"name", "seed", "argv", "versions", "stack", "scenario", "timeline", "start", "end", "started",
                 "ended", "slo"}
        extra = {k: v for k, v in m.raw.items() if k not in shown and v not in (None, "", [], {})}
        texts = {k: extra.pop(k) for k in list(extra) if isinstance(extra[k], str) and "\n" in extra[k]}
        for title, value in (("versions", m.versions), ("stack", m.stack), ("scenario", m.scenario),
                             ("timeline", m.timeline), ("targets from the run", list(m.slo)), ("more", extra),
                             *texts.items()):
            if value:
                shown_value = value if isinstance(value, str) else json.dumps(value, indent=2, default=str)
                blocks += f"<h3>{esc(title)}</h3><pre>{esc(shown_value)}</pre>"
        warnings = "".join(f"<li>{esc(w)}</li>" for w in self.run.warnings)
        if warnings:
            blocks += f"<h3>warnings</h3><ul class=\"notes\">{warnings}</ul>"
        return section("metadata", "Run", table(["", ""], kv, "kv") + blocks)

    def _exports(self) -> str:
        files = "".join(f"<li><code>csv/{esc(name)}</code></li>" for name in self.exports)
        body = (f"<p>Time series and tables behind this report ({self.width:g} s buckets), next to it:</p>"
                f"<ul>{files}</ul><p>Verdicts: <code>summary.json</code>, <code>junit.xml</code>.</p>")
        return section("exports", "Exports", body)


CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;
padding:0 18px 40px;color:#1d1d1f;background:#fff}
header{border-bottom:1px solid #ddd;padding:12px 0 6px}
h1{font-size:22px;margin:6px 0}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #eee}
h3{font-size:14px;margin:14px 0 4px}
.sub{color:#666;font-size:12px;margin:2px 0}
nav{font-size:12px;margin:8px 0}nav a{color:#0b5cad;text-decoration:none}
.badge{display:inline-block;padding:1px 8px;border-radius:4px;font-size:12px;font-weight:700;color:#fff;
vertical-align:middle}
.badge.pass{background:#2e7d32}.badge.fail{background:#c62828}.badge.unknown{background:#9e9e9e}
ul.headline{background:#f7f7f9;border:1px solid #e4e4e8;border-radius:6px;padding:10px 10px 10px 28px;margin:8px 0}
ul.headline li{margin:3px 0}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{border-bottom:1px solid #eee;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#fafafa;font-weight:600}
table.kv td:first-child{color:#555}
.ok{color:#2e7d32}.bad{color:#c62828;font-weight:700}
figure{margin:8px 0}img{max-width:100%;height:auto}
.cols{display:flex;gap:24px;flex-wrap:wrap}.cols>div{flex:1 1 420px}
pre{background:#f7f7f9;padding:8px;font-size:12px;overflow:auto;max-height:320px}
ul.notes,p.notes{color:#8a6d00}
"""
