"""Figures of a capacity search: capacity per replica count against linear scaling,
the scaling efficiency, every step's latency by level, and how the machine's cores
were shared past each knee."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from reports.capacity import Knee, cpu_by_role
from reports.capacity_plan import BROKE, GENERATOR, HELD, CapacityPlan
from reports.plots import WIDTH

_OUTCOME_STYLE = {HELD: ("o", "#2e7d32"), BROKE: ("X", "#c62828"), GENERATOR: ("s", "#9e9e9e")}


def capacity_and_efficiency(plan: CapacityPlan, knees: list[Knee]) -> Figure:
    fig, (cap_ax, eff_ax) = plt.subplots(1, 2, figsize=(WIDTH, 3.6))
    ns = [k.replicas for k in knees]
    caps = [k.capacity if k.capacity is not None else np.nan for k in knees]
    held = [(k.replicas, k.capacity) for k in knees if k.capacity is not None]
    if held:
        base_n, base_cap = min(held)
        ideal = [base_cap * n / base_n for n in ns]
        cap_ax.plot(ns, ideal, "--", color="#888888", lw=1.2, label="linear scaling")
        cap_ax.plot(ns, caps, "-o", color="#0b5cad", lw=1.8, label="capacity (highest level held)")
        for k in knees:
            if k.capacity is not None and k.lower_bound:
                cap_ax.annotate("≥", (k.replicas, k.capacity), textcoords="offset points", xytext=(6, 4),
                                fontsize=9, color="#0b5cad")
        cap_ax.legend(loc="upper left", fontsize=8)
    else:
        cap_ax.text(0.5, 0.5, "no level held", transform=cap_ax.transAxes, ha="center", color="#888888")
    cap_ax.set_xticks(ns)
    cap_ax.set_xlabel("replicas")
    cap_ax.set_ylabel(plan.unit)
    cap_ax.set_ylim(bottom=0)
    cap_ax.set_title("capacity per replica count", fontsize=9, loc="left")
    cap_ax.grid(alpha=0.3)
    effs = [k.efficiency if k.efficiency is not None else np.nan for k in knees]
    eff_ax.bar([str(n) for n in ns], effs, color=["#2e7d32" if (e or 0) >= 0.8 else "#c62828" for e in effs])
    eff_ax.axhline(1.0, color="#888888", ls="--", lw=1)
    for i, e in enumerate(effs):
        if np.isfinite(e):
            eff_ax.text(i, e, f"{e:.2f}", ha="center", va="bottom", fontsize=8)
    finite = [e for e in effs if np.isfinite(e)]
    eff_ax.set_ylim(0, max(1.15, max(finite) * 1.1) if finite else 1.15)
    eff_ax.set_xlabel("replicas")
    eff_ax.set_title("scaling efficiency: capacity(N) / (N × capacity(1))", fontsize=9, loc="left")
    eff_ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def steps_by_level(plan: CapacityPlan) -> Figure:
    """Delivery p99 and HTTP p95 of every step by its level, one line per replica count."""
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH, 3.4))
    for ax, attr, title in ((axes[0], "delivery_p99_ms", "delivery latency p99 per step"),
                            (axes[1], "http_p95_ms", "HTTP latency p95 per step")):
        for result in plan.results:
            steps = sorted(result.steps, key=lambda s: s.level)
            if not steps:
                continue
            xs = [s.level for s in steps]
            ys = [getattr(s, attr) if getattr(s, attr) is not None else np.nan for s in steps]
            plural = "s" if result.replicas != 1 else ""
            line, = ax.plot(xs, ys, "-", lw=1.0, alpha=0.7, label=f"{result.replicas} replica{plural}")
            for s, x, y in zip(steps, xs, ys):
                marker, colour = _OUTCOME_STYLE.get(s.outcome, ("o", "#333333"))
                ax.plot([x], [y], marker, color=line.get_color(), markeredgecolor=colour, markersize=7,
                        markeredgewidth=1.5)
        ax.set_xlabel(plan.unit)
        ax.set_ylabel("ms")
        ax.set_title(title + " (edge: green held, red broke, grey generator)", fontsize=8.5, loc="left")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        values = [v for r in plan.results for s in r.steps if (v := getattr(s, attr)) is not None and v > 0]
        if values and max(values) / max(min(values), 1e-3) > 50:
            ax.set_yscale("log")
    fig.tight_layout()
    return fig


def cores_past_the_knee(plan: CapacityPlan) -> Figure:
    """Stacked mean cores per role at each replica count's first step past the knee."""
    fig, ax = plt.subplots(figsize=(WIDTH, 3.2))
    labels, stacks = [], []
    for result in plan.results:
        step = result.knee_step() or result.held_step()
        if step is None:
            continue
        roles = cpu_by_role(step.cpu)
        if step.other_cpu is not None:
            roles["outside the run"] = step.other_cpu
        past = "past the knee" if not step.passed else "last held"
        labels.append(f"{result.replicas} replicas\n{step.level:,.0f} {plan.unit} ({past})")
        stacks.append(roles)
    names = sorted({n for roles in stacks for n in roles}, key=lambda n: -sum(r.get(n, 0) for r in stacks))
    bottom = np.zeros(len(stacks))
    for name in names:
        values = np.array([roles.get(name, 0.0) for roles in stacks])
        ax.barh(labels, values, left=bottom, label=name)
        bottom += values
    cores = plan.cores or 1
    ax.axvline(cores, color="#c62828", ls=":", lw=1.2)
    ax.text(cores, 1.0, f" {cores} cores", transform=ax.get_xaxis_transform(), va="top", fontsize=8,
            color="#c62828")
    ax.set_xlabel("mean cores during the step")
    ax.set_title("how the machine's cores were shared at each knee", fontsize=9, loc="left")
    if names:
        ax.legend(fontsize=7.5, ncol=4, loc="lower right")
    else:
        ax.text(0.5, 0.5, "no resource samples", transform=ax.transAxes, ha="center", color="#888888")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig
