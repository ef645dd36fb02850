"""The report's "resources" section: what each component used, per phase, what sat at
its limit, and each replica's connections to its dependencies."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from reports import resource_plots
from reports.html_parts import esc, figure, num, table
from reports.phases import AFTER_HEAL, FAULT, STEADY
from reports.plots import Span
from reports.records import RunData
from reports.resources import AT_LIMIT, ResourceSummary, connection_peaks, summarize

_PHASES = ((STEADY, "steady"), (FAULT, "in faults"), (AFTER_HEAL, "after heal"))


def body(run: RunData, spans: Sequence[Span], t0: float, export: Callable[[pd.DataFrame, str], None],
         heal_window_s: float) -> str:
    summary = summarize(run, heal_window_s)
    if not summary.sampled:
        return ("<p>No resource samples in this run (runs from before the sampler, or load run by hand "
                "without <code>gauntlet run</code>).</p>")
    export(run.resources, "resources.csv")
    if len(run.dep_conns):
        export(run.dep_conns, "dependency_connections.csv")
    out = f"<p><b>At its limit</b>: {esc(summary.bottleneck())}.</p>"
    out += figure(resource_plots.cpu_and_memory(run.resources, spans, t0, summary.cores),
                  "CPU and memory per component over time")
    out += _usage_table(summary)
    if len(run.dep_conns):
        out += figure(resource_plots.dependency_connections(run.dep_conns, spans, t0),
                      "open connections to each dependency per replica")
        peaks = connection_peaks(run)
        rows = [[esc(r.replica), esc(r.dependency), num(int(r.peak)), num(float(r["mean"]), 2), num(int(r.samples))]
                for _, r in peaks.iterrows()]
        out += "<h3>Connections to dependencies</h3>" + table(
            ["replica", "dependency", "peak", "mean", "samples"], rows)
        out += ('<p class="sub">Counted by the fault proxy each replica reaches its dependencies through (or '
                "from the replica's own sockets without proxies). Targets: "
                "<code>db_connections_per_replica: max&lt;=2</code>, <code>db_connections: max&lt;200</code>.</p>")
    sampler = run.meta.raw.get("resources") or {}
    cost = sampler.get("cpu_ms_per_sample")
    out += (f'<p class="sub">Sampled from outside with psutil every {sampler.get("interval_s", 1):g} s'
            + (f" ({cost:.1f} ms of CPU per sample)" if cost is not None else "")
            + f". At its limit: a process at ≥ {100 * AT_LIMIT:.0f} % of one core (each is single-threaded "
              "where it counts), a component at that share of min(processes, cores), the machine at that "
              f"share of its {summary.cores} cores. CPU of a Postgres backend that lives less than a sample "
              "is missed; memory is RSS, so shared pages count once per process.</p>")
    return out


def _usage_table(summary: ResourceSummary) -> str:
    rows = []
    everything = list(summary.components) + [c for c in (summary.machine, summary.other) if c is not None]
    # Phase columns only when the run had faults: otherwise all of it is steady.
    phases = _PHASES if any(FAULT in c.by_phase for c in everything) else ()
    for c in everything:
        phase_cells = []
        for phase, _ in phases:
            u = c.by_phase.get(phase)
            phase_cells.append("" if u is None else f"{num(u.cpu_mean, 2)} / {num(u.cpu_peak, 2)}")
        share = f"{100 * c.at_limit_share:.0f} %"
        rows.append([esc(c.component), esc(c.kind), num(c.processes) if c.processes else "—", num(c.cpu_mean, 2), num(c.cpu_p95, 2),
                     num(c.cpu_peak, 2), *phase_cells, num(c.rss_peak_mb, 0),
                     f'<span class="{"bad" if c.saturated else ""}">{esc(share)}</span>'])
    return ("<h3>Per component during the load (CPU in cores)</h3>"
            + table(["component", "kind", "processes", "CPU mean", "p95", "peak",
                     *(f"{label} mean / peak" for _, label in phases), "RSS peak MB", "at its limit"], rows))
