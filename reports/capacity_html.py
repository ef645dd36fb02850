"""capacity.html: one self-contained page for a capacity search (reports/capacity.py
gives its answers). Sections with stable ids: answer, knees, plots, cores, steps,
conditions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from reports import capacity_plots
from reports.capacity import flattening, headline, knees
from reports.capacity_plan import CapacityPlan, read_plan
from reports.html import CSS, badge, esc, figure, section, table
from reports.records import write_atomic

REPORT_FILE = "capacity.html"
SECTION_IDS = ("answer", "knees", "plots", "cores", "steps", "conditions")


def build_capacity_report(directory: str | Path) -> Path:
    directory = Path(directory)
    plan = read_plan(directory)
    return write_atomic(directory / REPORT_FILE, render(plan, directory))


def render(plan: CapacityPlan, directory: Path) -> str:
    ks = knees(plan)
    unit = plan.unit
    answer = f"<p><b>{esc(headline(plan))}</b></p>"
    flat = flattening(plan)
    if flat:
        answer += f"<p>{esc(flat)}</p>"
    if plan.interrupted:
        answer += "<p class=\"bad\">Interrupted: the search covers the steps that finished.</p>"
    rows = [[esc(k.replicas), esc("—" if k.capacity is None else f"{'≥ ' if k.lower_bound else ''}{k.capacity:,.0f}"),
             esc("—" if k.broke_at is None else f"{k.broke_at:,.0f}"),
             esc("—" if k.efficiency is None else f"{k.efficiency:.2f}"), esc(k.why), esc(k.stopped)] for k in ks]
    knee_table = table(["replicas", f"capacity ({unit})", "first level that broke", "scaling efficiency",
                        "past the knee: what saturated", "search stopped"], rows)
    knee_table += ("<p class=\"sub\">Capacity: the highest level at which every check of the run passed (the same "
                   "thresholds as <code>gauntlet run</code>); ≥ when no step above it broke (out of steps or time, "
                   "the highest level tried, or the load generator could not keep up). Efficiency: "
                   "(capacity(N) / N) / (capacity(B) / B) for the smallest count B that held.</p>")
    plots = figure(capacity_plots.capacity_and_efficiency(plan, ks), "capacity per replica count and efficiency")
    plots += figure(capacity_plots.steps_by_level(plan), "latency of every step by load level")
    cores = figure(capacity_plots.cores_past_the_knee(plan), "cores per role at each knee")
    step_rows = []
    for result in plan.results:
        for s in sorted(result.steps, key=lambda s: s.level):
            link = f'<a href="{esc(s.run_dir)}/report.html">{esc(Path(s.run_dir).name)}</a>'
            step_rows.append([
                esc(s.replicas), esc(f"{s.level:,.0f}"), badge({"held": "pass", "broke": "fail"}.get(s.outcome, "unknown"))
                + f" {esc(s.outcome)}", esc(s.reason[:300]), esc(f"{s.sockets_peak:,}"),
                esc(f"{s.acked_per_s:,.1f}"), esc(f"{s.deliveries_per_s:,.0f}"),
                esc("—" if s.delivery_p99_ms is None else f"{s.delivery_p99_ms:,.0f}"),
                esc("—" if s.http_p95_ms is None else f"{s.http_p95_ms:,.0f}"), esc(s.bottleneck[:200]),
                esc(s.measurement[:200]), esc(f"{s.seconds:,.0f} s"), link])
    steps = table(["replicas", unit, "outcome", "why", "sockets peak", "acked/s", "deliveries/s", "delivery p99 ms",
                   "HTTP p95 ms", "at its limit", "measurement", "wall", "run"], step_rows)
    started = (dt.datetime.fromtimestamp(plan.started, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
               if plan.started else "")
    wall = f"{(plan.ended - plan.started) / 60:,.1f} min" if plan.started and plan.ended else "—"
    conditions = table(["", ""], [[esc(k), esc(v)] for k, v in (
        ("scenario", plan.scenario), ("load stepped", f"{plan.load} ({unit})"), ("broker", plan.broker),
        ("replica counts", ", ".join(map(str, plan.replicas))), ("each step", f"{plan.ramp_s:g} s ramp, "
                                                                              f"{plan.hold_s:g} s hold"),
        ("first level", f"{plan.start:g}"), ("highest level", f"{plan.max_level:g}"), ("seed", plan.seed),
        ("targets added", "; ".join(plan.slo) or "defaults"), ("machine", plan.conditions),
        ("started", started), ("wall time", wall), ("command", " ".join(plan.argv)),
        *(("note", n) for n in plan.notes))], "kv")
    body = (section("answer", "Answer", answer) + section("knees", "Knee per replica count", knee_table)
            + section("plots", "Capacity, efficiency and latency by level", plots)
            + section("cores", "What the cores did at each knee", cores)
            + section("steps", "Every step", steps) + section("conditions", "Conditions", conditions))
    nav = " · ".join(f'<a href="#{s}">{s}</a>' for s in SECTION_IDS)
    name = Path(plan.scenario).stem
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>gauntlet capacity — {esc(name)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>Capacity of {esc(name)}: {esc(', '.join(map(str, plan.replicas)))} replicas</h1>"
            f"<p class=\"sub\">{esc(started)} · {esc(plan.conditions)}</p><nav>{nav}</nav></header>"
            + body + "</body></html>\n")
