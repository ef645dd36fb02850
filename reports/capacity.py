"""The answers of a capacity search: the knee per replica count, the scaling
efficiency, and why the curve bends (what saturated at each knee).

    knee(N)        the highest level that held every check with N replicas
    efficiency(N)  (knee(N) / N) / (knee(B) / B), B the smallest count that held:
                   1.0 means N replicas hold N/B times the load, as horizontal
                   scaling promises; with B = 1 it is knee(N) / (N × knee(1))

The reason comes from the first step past the knee: the components its resource
summary found at their limit, else the machine's cores, with how those cores were
shared (replicas, load generator, nginx, Postgres, Redis, fault proxy, and what ran
outside the run). On one machine, every replica added shares the same cores, so the
curve flattens once they are busy: the report says so instead of calling it a
property of the app.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reports.capacity_plan import GENERATOR, CapacityPlan, CapacityResult, CapacityStep

# Below this, a replica added is said not to add its share.
POOR_EFFICIENCY = 0.8
_REPLICA = re.compile(r"^r\d+$")


@dataclass(frozen=True)
class Knee:
    replicas: int
    capacity: float | None  # the highest level held
    broke_at: float | None
    efficiency: float | None
    why: str  # what saturated past the knee
    lower_bound: bool  # the search stopped before a step broke (budget, generator, max level)
    stopped: str


def cpu_by_role(cpu: dict[str, float]) -> dict[str, float]:
    """Mean cores per role from per-component means: all replicas together, all load
    processes together, and the rest by name."""
    roles: dict[str, float] = {}
    for name, cores in cpu.items():
        role = ("replicas" if _REPLICA.match(name) else "load generator" if name.startswith("load-")
                else name)
        roles[role] = roles.get(role, 0.0) + (cores or 0.0)
    return dict(sorted(roles.items(), key=lambda kv: -kv[1]))


def cores_text(step: CapacityStep) -> str:
    """How the machine's cores were shared during a step."""
    roles = cpu_by_role(step.cpu)
    parts = [f"{role} {cores:.2f}" for role, cores in roles.items() if cores >= 0.01]
    if step.other_cpu is not None and step.other_cpu >= 0.01:
        parts.append(f"outside the run {step.other_cpu:.2f}")
    return ", ".join(parts)


def why(step: CapacityStep | None, cores: int) -> str:
    """What saturated at this step (the first past a knee)."""
    if step is None:
        return "no step broke"
    if step.outcome == GENERATOR:
        return "the load generator could not keep up (its own CPU or event loop), so the app's limit is higher"
    shared = cores_text(step)
    busy = f"the machine's {cores} cores busy {step.machine_cpu:.2f} on average" if step.machine_cpu is not None else ""
    if step.saturated:
        head = f"{', '.join(step.saturated[:3])} at its limit"
    elif step.bottleneck.startswith("the machine"):
        head = f"the machine's {cores} cores (no single component at its limit)"
    elif step.bottleneck in ("nothing at its limit", "not sampled", ""):
        head = "no component at its limit (the checks broke first)" if step.bottleneck != "not sampled" \
            else "not sampled"
    else:
        head = step.bottleneck
    tail = "; ".join(x for x in (busy, f"cores used: {shared}" if shared else "") if x)
    broke = f"broke on {', '.join(c.removeprefix('slo ') for c in step.failed[:3])}; " if step.failed else ""
    return f"{broke}{head}" + (f" ({tail})" if tail else "")


def outside_dominates(step: CapacityStep) -> bool:
    """Most of the busy cores were other jobs': the machine's conditions, not the run."""
    ours = sum(step.cpu.values())
    return step.other_cpu is not None and step.other_cpu > max(ours, 0.5)


def knees(plan: CapacityPlan) -> list[Knee]:
    held = {r.replicas: r.held for r in plan.results if r.held is not None}
    base = min(held) if held else None
    out = []
    for r in plan.results:
        eff = None
        if base is not None and r.held is not None and held[base]:
            eff = (r.held / r.replicas) / (held[base] / base)
        out.append(Knee(r.replicas, r.held, r.broke, eff, why(r.knee_step(), plan.cores or 1),
                        lower_bound=r.broke is None or r.generator_bound, stopped=r.stopped))
    return out


def flattening(plan: CapacityPlan) -> str:
    """Why the curve bends, when it does: one paragraph."""
    ks = [k for k in knees(plan) if k.efficiency is not None]
    if len(ks) < 2:
        return ""
    poor = [k for k in ks if k.efficiency < POOR_EFFICIENCY and k.replicas != min(x.replicas for x in ks)]
    if not poor:
        return (f"Scaling held: every replica count kept at least {100 * POOR_EFFICIENCY:.0f} % of linear "
                "scaling within the levels tried.")
    worst = min(poor, key=lambda k: k.efficiency)
    result = plan.result(worst.replicas)
    step = result.knee_step() if result else None
    cores = plan.cores or 1
    text = (f"The curve flattens: {worst.replicas} replicas hold {worst.capacity:,.0f} {plan.unit}, "
            f"{100 * worst.efficiency:.0f} % of linear scaling. ")
    if step is None:
        return text + "No step broke at that count, so the search ran out of steps or time first."
    if step.outcome == GENERATOR:
        return text + ("Past the knee the load generator itself could not keep up: what was measured is its "
                       "limit on this machine, not the app's.")
    machine_busy = step.machine_cpu is not None and step.machine_cpu >= 0.9 * cores
    if machine_busy and outside_dominates(step):
        return text + (f"At the knee the machine's {cores} cores were busy, mostly with work outside this run "
                       f"({cores_text(step)} cores): the figures measure a machine shared with other jobs. "
                       "Re-measure at a quiet moment before reading them as the app's scaling.")
    if machine_busy or step.bottleneck.startswith("the machine"):
        return text + (f"At the knee the machine's {cores} cores were busy ({cores_text(step)} cores): every "
                       f"replica added shares the same {cores} cores with the load generator, nginx, Postgres "
                       "and Redis, so it adds processes, not CPU. On one machine this is a limit of the machine, "
                       "not evidence that the app does not scale; run the replicas on more machines to measure "
                       "that.")
    if step.saturated:
        shared = [c for c in step.saturated if not _REPLICA.match(c)]
        if shared:
            return text + (f"At the knee {', '.join(shared)} sat at its limit: a component every replica "
                           "shares, which a replica more does not relieve.")
        return text + f"At the knee {', '.join(step.saturated)} sat at its limit."
    return text + f"At the knee: {why(step, cores)}."


def headline(plan: CapacityPlan) -> str:
    parts = []
    for k in knees(plan):
        if k.capacity is None:
            parts.append(f"{k.replicas} replica{'s' if k.replicas != 1 else ''}: none held ({k.stopped})")
            continue
        eff = f", efficiency {k.efficiency:.2f}" if k.efficiency is not None and k.replicas != min(
            x.replicas for x in knees(plan) if x.capacity is not None) else ""
        bound = "≥ " if k.lower_bound else ""
        parts.append(f"{k.replicas} replica{'s' if k.replicas != 1 else ''}: {bound}{k.capacity:,.0f} {plan.unit}"
                     f"{eff}")
    return "Capacity: " + "; ".join(parts) if parts else "Capacity: no step ran"


def summary_lines(plan: CapacityPlan) -> list[str]:
    """The answer and a compact table, for the terminal."""
    lines = ["", headline(plan)]
    flat = flattening(plan)
    if flat:
        lines.append(flat)
    lines.append("")
    header = ("replicas", f"capacity ({plan.unit})", "broke at", "efficiency", "past the knee")
    rows = []
    for k in knees(plan):
        rows.append((str(k.replicas), "—" if k.capacity is None else f"{'≥ ' if k.lower_bound else ''}{k.capacity:,.0f}",
                     "—" if k.broke_at is None else f"{k.broke_at:,.0f}",
                     "—" if k.efficiency is None else f"{k.efficiency:.2f}", k.why[:90]))
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for r in (header, *rows):
        lines.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())
    if plan.conditions:
        lines.append(f"conditions: {plan.conditions}")
    return lines


__all__ = ["Knee", "knees", "flattening", "headline", "summary_lines", "why", "cpu_by_role", "cores_text",
           "CapacityResult"]
