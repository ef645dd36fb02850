"""Was the measurement valid? Whether the load generator kept up with its own schedule.

Every latency the load generator reports is the app's latency plus the generator's own
lateness: a send that leaves after its scheduled time, a frame that waits in a socket
until the process gets round to reading it. When the generator is short of CPU (its
own work, or a machine shared with other jobs), that lateness can be the larger part,
and a missed latency target would blame the app for the generator's delay.

Three signals, each against a documented limit (`GeneratorLimits`):

- CPU of each load process (its own loadgen.csv, else the resource sampler's view): a
  gevent process runs on one core, and Locust warns at 90 % of it; k6 asks for 20 %
  idle. Over the limit in at least 10 % of the load's seconds (and at least 3).
- event-loop lag (loadgen.csv): how late a 50 ms timer fired. Beyond 100 ms in at
  least 5 % of the load's seconds, every timestamp in those seconds is that late.
- schedule slip of the publishes (pub.csv `ts_sent - ts_intended`): p99 beyond 100 ms.

The generator's **lateness** is what it can add to a measured latency: the loop lag's
p99 (of each second's worst) for a latency between two timestamps it took (HTTP
duration, publish duration from the send, delivery latency), and the larger of that
and the slip's p99 for a latency from the schedule (publish_duration_corrected). When
the measurement is not valid, a latency target the run missed by less than that
lateness turns `unknown` (the miss may be the generator's
own); a target missed by more stays failed (the app missed it even allowing for the
generator), and a target met stays met (the lateness only adds to what was measured).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from reports.records import RunData

_CACHE_KEY = "measurement"
STOP_MARGIN_S = 1.0


@dataclass(frozen=True)
class GeneratorLimits:
    cpu: float = 0.90  # of one core, per load process
    cpu_share: float = 0.10  # of the load's seconds at or over it
    lag_ms: float = 100.0  # a second whose loop ran a timer later than this is late
    lag_share: float = 0.05  # of the load's seconds that late
    slip_p99_ms: float = 100.0  # publishes behind their schedule, p99
    min_samples: int = 3


LIMITS = GeneratorLimits()


@dataclass(frozen=True)
class WorkerHealth:
    worker: str
    seconds: int
    cpu_mean: float | None
    cpu_peak: float | None
    cpu_busy_seconds: int  # at or over the CPU limit
    lag_p99_ms: float | None  # of the per-second worst lag
    lag_peak_ms: float | None
    late_seconds: int  # seconds with a lag over the limit
    source: str  # loadgen (its own) | resources (the sampler's view; no lag)


@dataclass(frozen=True)
class Measurement:
    """The verdict on the measurement itself. `valid` is None when nothing recorded the
    generator's health (runs from before loadgen.csv): nothing to say either way."""

    valid: bool | None
    reasons: tuple[str, ...]
    lateness_ms: float | None  # how late the generator could make a latency measured from a send
    loop_lateness_ms: float | None = None  # from a timestamp it took (the loop lag alone)
    workers: tuple[WorkerHealth, ...] = ()
    slip_p50_ms: float | None = None
    slip_p99_ms: float | None = None
    slip_samples: int = 0
    limits: GeneratorLimits = field(default_factory=GeneratorLimits)

    @property
    def status(self) -> str:
        return {True: "valid", False: "not valid", None: "not recorded"}[self.valid]

    def headline(self) -> str:
        """One line for the report's header and the CLI table."""
        if self.valid is None:
            return "measurement validity not recorded (no load generator health in this run)"
        figures = self.figures()
        if self.valid:
            return f"measurement valid: the load generator kept up ({figures})"
        return f"measurement NOT valid: the load generator could not keep up: {'; '.join(self.reasons)}"

    def figures(self) -> str:
        parts = []
        peaks = [w.cpu_peak for w in self.workers if w.cpu_peak is not None]
        if peaks:
            parts.append(f"CPU peak {100 * max(peaks):.0f} % of a core")
        lags = [w.lag_p99_ms for w in self.workers if w.lag_p99_ms is not None]
        if lags:
            parts.append(f"loop lag p99 {max(lags):,.0f} ms")
        if self.slip_p99_ms is not None:
            parts.append(f"publish slip p99 {self.slip_p99_ms:,.0f} ms")
        return ", ".join(parts) or "no figures"

    def to_dict(self) -> dict:
        return {"valid": self.valid, "status": self.status, "headline": self.headline(),
                "reasons": list(self.reasons), "lateness_ms": self.lateness_ms,
                "slip_p50_ms": self.slip_p50_ms, "slip_p99_ms": self.slip_p99_ms, "slip_samples": self.slip_samples,
                "workers": [vars(w) for w in self.workers], "limits": vars(self.limits)}


def assess(run: RunData, limits: GeneratorLimits = LIMITS) -> Measurement:
    """The run's measurement validity (computed once per run)."""
    key = (_CACHE_KEY, limits)
    if key not in run.cache:
        run.cache[key] = _assess(run, limits)
    return run.cache[key]


def judged_window(run: RunData) -> tuple[float, float]:
    """The load's span without its stop: when the stages end, the generator stops its
    users and drains, and the sends and timers of that last second are late because it
    is stopping, not because it could not keep up."""
    lo, hi = run.load_span()
    raw = run.meta.raw
    try:
        planned_end = float(raw["started"]) + float(raw["planned_duration_s"])
    except (KeyError, TypeError, ValueError):
        planned_end = hi
    return lo, max(lo, min(hi, planned_end) - STOP_MARGIN_S)


def _assess(run: RunData, limits: GeneratorLimits) -> Measurement:
    lo, hi = judged_window(run)
    workers = _workers(run, lo, hi, limits)
    slip = _slip_ms(run, lo, hi)
    slip50 = float(np.percentile(slip, 50)) if len(slip) else None
    slip99 = float(np.percentile(slip, 99)) if len(slip) else None
    recorded = any(w.source == "loadgen" for w in workers)
    if not recorded:
        return Measurement(None, (), None, None, tuple(workers), slip50, slip99, len(slip), limits)
    reasons = []
    for w in workers:
        busy_needed = max(limits.min_samples, limits.cpu_share * w.seconds)
        if w.cpu_busy_seconds >= busy_needed:
            reasons.append(f"load process {w.worker} at ≥ {100 * limits.cpu:.0f} % of a core for "
                           f"{w.cpu_busy_seconds} of {w.seconds} s (Locust warns at 90 %)")
        late_needed = max(limits.min_samples, limits.lag_share * w.seconds)
        if w.late_seconds >= late_needed:
            reasons.append(f"{w.worker}'s event loop ran timers more than {limits.lag_ms:g} ms late in "
                           f"{w.late_seconds} of {w.seconds} s (worst {w.lag_peak_ms:,.0f} ms)")
    if slip99 is not None and len(slip) >= limits.min_samples and slip99 > limits.slip_p99_ms:
        reasons.append(f"publishes left p99 {slip99:,.0f} ms behind their schedule "
                       f"(limit {limits.slip_p99_ms:g} ms)")
    lags = [w.lag_p99_ms for w in workers if w.lag_p99_ms is not None]
    loop = max(lags) if lags else None
    lateness = max([*lags, slip99 or 0.0]) if lags or slip99 is not None else None
    return Measurement(not reasons, tuple(reasons), lateness, loop, tuple(workers), slip50, slip99, len(slip),
                       limits)


def _workers(run: RunData, lo: float, hi: float, limits: GeneratorLimits) -> list[WorkerHealth]:
    out = []
    g = run.loadgen
    if len(g):
        ts = g["ts"].to_numpy(dtype="float64")
        g = g[(ts >= lo) & (ts <= hi)] if hi > lo else g
        for worker, rows in g.groupby(g["worker"].astype(object), sort=True):
            rows = rows.sort_values("ts")
            cpu = rows["cpu"].to_numpy(dtype="float64")
            lag = rows["lag_max_ms"].to_numpy(dtype="float64")
            # A row covers the time since the one before: a process stopped for 4 s writes
            # one row late by 4 s, and all 4 s were late.
            ts = rows["ts"].to_numpy(dtype="float64")
            covers = np.diff(ts, prepend=ts[0] - 1.0) if len(ts) else ts
            out.append(WorkerHealth(
                worker=str(worker), seconds=int(round(covers.sum())), cpu_mean=_stat(np.mean, cpu),
                cpu_peak=_stat(np.max, cpu), cpu_busy_seconds=int(round(covers[cpu >= limits.cpu].sum())),
                lag_p99_ms=_stat(lambda v: np.percentile(v, 99), lag), lag_peak_ms=_stat(np.max, lag),
                late_seconds=int(round(covers[lag > limits.lag_ms].sum())), source="loadgen"))
        return out
    # No health of its own: the sampler's view of the load processes' CPU, for the record.
    res = run.resources
    load = res[(res["kind"].astype(object) == "load").to_numpy()] if len(res) else res
    for name, rows in (load.groupby(load["component"].astype(object), sort=True) if len(load) else ()):
        cpu = rows["cpu"].to_numpy(dtype="float64")
        cpu = cpu[np.isfinite(cpu)]
        out.append(WorkerHealth(str(name).removeprefix("load-"), len(cpu), _stat(np.mean, cpu), _stat(np.max, cpu),
                                int((cpu >= limits.cpu).sum()), None, None, 0, "resources"))
    return out


def _slip_ms(run: RunData, lo: float, hi: float) -> np.ndarray:
    p = run.pub
    if not len(p):
        return np.array([])
    intended = p["ts_intended"].to_numpy(dtype="float64")
    slip = (p["ts_sent"].to_numpy(dtype="float64") - intended) * 1000.0
    keep = np.isfinite(slip) & ((intended >= lo) & (intended <= hi) if hi > lo else True)
    return slip[keep]


def _stat(fn, values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return round(float(fn(values)), 3) if len(values) else None


# Latencies measured from the open-model schedule: the slip is part of them.
FROM_SCHEDULE = frozenset({"publish_duration_corrected"})


def lateness_for(measurement: Measurement, metric: str) -> float:
    """How much of a measured latency of this metric may be the generator's own."""
    if metric in FROM_SCHEDULE:
        return measurement.lateness_ms or 0.0
    return measurement.loop_lateness_ms or 0.0


def unjudgeable(measurement: Measurement, metric: str, observed: float | None, target: float, op: str) -> str:
    """Why a missed latency target cannot be blamed on the app, or "" when it can.

    Only an upper bound (`<`, `<=`) missed by less than the generator's lateness, in a
    run whose measurement is not valid."""
    if measurement.valid is not False or observed is None or op not in ("<", "<="):
        return ""
    lateness = lateness_for(measurement, metric)
    if observed - lateness > target or (op == "<" and observed - lateness == target):
        return ""
    return (f"the load generator could not keep up ({'; '.join(measurement.reasons)}), and its own lateness "
            f"(up to {lateness:,.0f} ms) covers the miss: cannot tell whether the app missed the target")
