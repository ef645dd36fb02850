"""What each component used while the load ran, and which one sat at its limit.

Reads the resource sampler's rows (resources.csv, dependency_connections.csv; see
harness/resources.py) and answers, per component: mean and peak CPU, peak memory, per
run phase, and the share of the load's samples it spent at its limit.

The limit: every process of the stack is single-threaded where it counts (an asyncio
or gevent loop, Redis's main thread, one nginx worker, one Postgres backend), so a
process is at its limit at `AT_LIMIT` (90 %) of one core, and a component of several
processes at 90 % of min(processes, machine cores). The machine is at its limit when
90 % of all its cores are busy. A component counts as saturated when it was at its
limit in at least `SATURATED_SHARE` of the load's samples (and at least
`SATURATED_MIN_SAMPLES` of them): a blip is not a bottleneck.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from reports.phases import PHASES, run_phase_of
from reports.records import RunData

AT_LIMIT = 0.90
SATURATED_SHARE = 0.10
SATURATED_MIN_SAMPLES = 3
# Outside the run's processes, this many cores on average is worth a note.
OTHER_NOTE_CORES = 0.15
MACHINE, OTHER = "machine", "other"
_CACHE_KEY = "resource_summary"


@dataclass(frozen=True)
class PhaseUsage:
    cpu_mean: float | None
    cpu_peak: float | None
    rss_peak_mb: float | None
    samples: int


@dataclass(frozen=True)
class ComponentUsage:
    component: str
    kind: str
    processes: int  # the most it had at once
    limit: float  # cores
    samples: int  # during the load
    cpu_mean: float | None
    cpu_p95: float | None
    cpu_peak: float | None
    busiest_process_peak: float | None
    rss_peak_mb: float | None
    at_limit_samples: int
    by_phase: dict[str, PhaseUsage] = field(default_factory=dict)

    @property
    def at_limit_share(self) -> float:
        return self.at_limit_samples / self.samples if self.samples else 0.0

    @property
    def saturated(self) -> bool:
        return (self.at_limit_samples >= SATURATED_MIN_SAMPLES
                and self.at_limit_share >= SATURATED_SHARE)

    @property
    def limit_text(self) -> str:
        if self.component == MACHINE:
            return f"{self.limit:g} cores"
        if self.processes <= 1:
            return "one core"
        return f"one core per process, {self.limit:g} in all"

    def to_dict(self) -> dict:
        return {"component": self.component, "kind": self.kind, "processes": self.processes, "limit": self.limit,
                "samples": self.samples, "cpu_mean": self.cpu_mean, "cpu_p95": self.cpu_p95,
                "cpu_peak": self.cpu_peak, "busiest_process_peak": self.busiest_process_peak,
                "rss_peak_mb": self.rss_peak_mb, "at_limit_samples": self.at_limit_samples,
                "at_limit_share": round(self.at_limit_share, 4), "saturated": self.saturated,
                "by_phase": {p: vars(u) for p, u in self.by_phase.items()}}


@dataclass(frozen=True)
class ResourceSummary:
    cores: int
    components: tuple[ComponentUsage, ...]  # the run's own, busiest first
    machine: ComponentUsage | None
    other: ComponentUsage | None
    sampled: bool  # false: the run has no resource samples (an older run, or load by hand)

    @property
    def saturated(self) -> list[ComponentUsage]:
        """Components that sat at their limit, the longest first."""
        return sorted((c for c in self.components if c.saturated), key=lambda c: -c.at_limit_share)

    def bottleneck(self) -> str:
        """One line: what was at its limit (the component, else the whole machine)."""
        if not self.sampled:
            return "not sampled"
        if self.saturated:
            return "; ".join(f"{c.component} ({c.kind}): {_at_limit(c)}" for c in self.saturated[:3])
        if self.machine is not None and self.machine.saturated:
            return f"the machine's {self.cores} cores ({_at_limit(self.machine)}), no single component at its limit"
        return "nothing at its limit"

    def notes(self) -> list[str]:
        """For the verdict's notes: what sat at its limit, and the machine's conditions."""
        if not self.sampled:
            return []
        out = [f"{c.component} ({c.kind}) sat at its limit: {_at_limit(c)}" for c in self.saturated]
        if self.machine is not None and self.machine.saturated:
            out.append(f"the machine's {self.cores} cores were busy: {_at_limit(self.machine)}")
        if self.other is not None and (self.other.cpu_mean or 0) >= OTHER_NOTE_CORES:
            out.append(f"processes outside this run (other users of the machine, kernel work) used "
                       f"{self.other.cpu_mean:.2f} cores on average, {self.other.cpu_peak:.2f} at peak")
        return out

    def to_dict(self) -> dict:
        return {"cores": self.cores, "sampled": self.sampled, "bottleneck": self.bottleneck(),
                "components": [c.to_dict() for c in self.components],
                "machine": self.machine.to_dict() if self.machine else None,
                "other": self.other.to_dict() if self.other else None}


def _at_limit(c: ComponentUsage) -> str:
    return (f"{100 * c.at_limit_share:.0f} % of the load's samples at ≥ {100 * AT_LIMIT:.0f} % of "
            f"{c.limit_text} (mean {c.cpu_mean or 0:.2f}, peak {c.cpu_peak or 0:.2f} cores)")


def summarize(run: RunData, heal_window_s: float = 30.0) -> ResourceSummary:
    """Per component usage over the load (computed once per run)."""
    key = (_CACHE_KEY, heal_window_s)
    if key in run.cache:
        return run.cache[key]
    res = run.resources
    cores = int((run.meta.raw.get("resources") or {}).get("cores") or 0)
    machine_rows = res[(res["component"].astype(object) == MACHINE).to_numpy()]
    if not cores and len(machine_rows):
        cores = int(np.nanmax(machine_rows["processes"].to_numpy(dtype="float64")))
    cores = cores or 1
    if not len(res):
        summary = ResourceSummary(cores, (), None, None, sampled=False)
        run.cache[key] = summary
        return summary
    lo, hi = run.load_span()
    ts = res["ts"].to_numpy(dtype="float64")
    during = res[(ts >= lo) & (ts <= hi + 1.0)] if hi > lo else res
    if not len(during):
        during = res
    phase, _ = run_phase_of(run, during["ts"].to_numpy(dtype="float64"), heal_window_s)
    during = during.assign(phase=np.asarray(phase))
    usages: list[ComponentUsage] = []
    machine = other = None
    for (component, kind), rows in during.groupby([during["component"].astype(object),
                                                   during["kind"].astype(object)], sort=False):
        usage = _usage(str(component), str(kind), rows, cores)
        if component == MACHINE:
            machine = usage
        elif component == OTHER:
            other = usage
        else:
            usages.append(usage)
    usages.sort(key=lambda u: -(u.cpu_mean or 0.0))
    summary = ResourceSummary(cores, tuple(usages), machine, other, sampled=True)
    run.cache[key] = summary
    return summary


def _usage(component: str, kind: str, rows: pd.DataFrame, cores: int) -> ComponentUsage:
    cpu = rows["cpu"].to_numpy(dtype="float64")
    busiest = rows["cpu_max"].to_numpy(dtype="float64")
    rss = rows["rss_mb"].to_numpy(dtype="float64")
    procs = rows["processes"].to_numpy(dtype="float64")
    nprocs = int(np.nanmax(procs)) if np.isfinite(procs).any() else 0
    if component == MACHINE:
        limit = float(cores)
        at_limit = cpu >= AT_LIMIT * limit
    elif component == OTHER:
        limit = float(cores)
        at_limit = np.zeros(len(cpu), dtype=bool)  # not ours to saturate
    else:
        limit = float(min(max(nprocs, 1), cores))
        at_limit = (cpu >= AT_LIMIT * limit) | (busiest >= AT_LIMIT)
    valid = np.isfinite(cpu)
    by_phase = {}
    phases = rows["phase"].to_numpy()
    for name in PHASES:
        mask = (phases == name) & valid
        if mask.any():
            by_phase[name] = PhaseUsage(_f(np.mean(cpu[mask])), _f(np.max(cpu[mask])), _nanmax(rss[phases == name]),
                                        int(mask.sum()))
    return ComponentUsage(
        component=component, kind=kind, processes=nprocs, limit=limit, samples=int(valid.sum()),
        cpu_mean=_f(np.mean(cpu[valid])) if valid.any() else None,
        cpu_p95=_f(np.percentile(cpu[valid], 95)) if valid.any() else None,
        cpu_peak=_f(np.max(cpu[valid])) if valid.any() else None,
        busiest_process_peak=_nanmax(busiest), rss_peak_mb=_nanmax(rss),
        at_limit_samples=int((at_limit & valid).sum()), by_phase=by_phase)


def _f(value: float) -> float:
    return round(float(value), 4)


def _nanmax(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return _f(values.max()) if len(values) else None


def connection_peaks(run: RunData) -> pd.DataFrame:
    """Peak and mean open connections per replica and dependency."""
    d = run.dep_conns
    if not len(d):
        return pd.DataFrame(columns=["replica", "dependency", "peak", "mean", "samples"])
    grouped = d.groupby([d["replica"].astype(object), d["dependency"].astype(object)])["connections"]
    out = grouped.agg(["max", "mean", "count"]).reset_index()
    out.columns = ["replica", "dependency", "peak", "mean", "samples"]
    return out
