"""Run phases: steady state, inside a fault window, and the heal window after it.

Every count and latency the report gives is split by phase, because the same number
means different things in each: one lost message in steady state is a defect, the
same loss inside a partition is the fault doing its job, and loss after the heal is
a recovery that did not happen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from reports.records import FaultWindow, RunData

STEADY, FAULT, AFTER_HEAL = "steady", "fault", "after_heal"
PHASES = (STEADY, FAULT, AFTER_HEAL)
DEFAULT_HEAL_WINDOW_S = 30.0


def active_faults(run: RunData) -> list[FaultWindow]:
    """The faults that took effect; a failed injection has no window to shade or split by."""
    return [f for f in run.faults if f.injected]


def phase_of(times: np.ndarray | pd.Series, faults: Sequence[FaultWindow], run_end: float,
             heal_window_s: float = DEFAULT_HEAL_WINDOW_S) -> tuple[pd.Categorical, np.ndarray]:
    """Phase of each time, and the id of the fault whose window (or heal window) holds it.

    Inside a fault wins over after another fault's heal, so overlapping faults count
    as fault time. Loops over faults (a handful), never over times.
    """
    t = np.asarray(times, dtype="float64")
    codes = np.zeros(len(t), dtype="int8")  # 0 steady, 1 fault, 2 after heal
    fault_ids = np.full(len(t), None, dtype=object)
    for fault in faults:
        end = fault.end_or(run_end)
        if fault.end is not None:
            after = (t > end) & (t <= end + heal_window_s) & (codes == 0)
            codes[after] = 2
            fault_ids[after] = fault.id
    for fault in faults:
        inside = (t >= fault.start) & (t <= fault.end_or(run_end)) & (codes != 1)
        codes[inside] = 1
        fault_ids[inside] = fault.id
    phase = pd.Categorical.from_codes(codes, categories=list(PHASES))
    return phase, fault_ids


def run_phase_of(run: RunData, times: np.ndarray | pd.Series,
                 heal_window_s: float = DEFAULT_HEAL_WINDOW_S) -> tuple[pd.Categorical, np.ndarray]:
    return phase_of(times, active_faults(run), run.t_end, heal_window_s)


def phase_seconds(run: RunData, heal_window_s: float = DEFAULT_HEAL_WINDOW_S) -> dict[str, float]:
    """How many seconds of the run each phase covers, so a per-phase count becomes a
    per-phase rate. The phase only changes at a fault's start, end or heal-window end,
    so classifying the midpoint of each stretch between those is exact."""
    start, end = run.t0, run.t_end
    faults = active_faults(run)
    cuts = {start, end}
    for fault in faults:
        cuts.update((fault.start, fault.end_or(end)))
        if fault.end is not None:
            cuts.add(fault.end + heal_window_s)
    edges = np.array(sorted(t for t in cuts if start <= t <= end), dtype="float64")
    out = dict.fromkeys(PHASES, 0.0)
    if len(edges) < 2:
        return out
    phase, _ = phase_of((edges[:-1] + edges[1:]) / 2.0, faults, end, heal_window_s)
    lengths = np.diff(edges)
    for name in PHASES:
        out[name] = float(lengths[np.asarray(phase == name)].sum())
    return out
