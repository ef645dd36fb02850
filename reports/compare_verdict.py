"""The comparison's answer in plain words: what each broker lost under each fault, and
which broker to use, computed from the figures (reports/comparison.py).

The recommendation weighs, in order: nothing lost for good, duplicated, misrouted or
invented (safety first: a fast broker that loses messages is no candidate); fewest
deliveries missed live; fewest latency targets missed; least harm under the faults
(deliveries missed or late, publishes refused); the highest fan-out rate sustained
(when the rate search ran); the lowest delivery p99 outside faults. On each, brokers
within run-to-run noise of the best stay level; the sentence names the criteria that
dropped the others, and a trade-off line names any broker that beats the winner on
capacity or latency.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

from reports.comparison import BrokerFigures, FaultEffect, Mechanism


@dataclass(frozen=True)
class Recommendation:
    broker: str | None
    headline: str
    tradeoffs: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)


def duration_text(ms: float | None) -> str:
    if ms is None or not math.isfinite(ms):
        return "n/a"
    if ms < 1000:
        return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"
    return f"{ms / 1000:.1f} s"


def rate_text(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:,.0f} msg/s"


def _how(m: Mechanism) -> str:
    if m.caught_up:
        return f"delivered after the reconnect by the catch-up from Postgres ({m.caught_up:,} notifications)"
    if m.resumes:
        gaps = f"; {m.gaps} gap(s) filled from Postgres" if m.gaps else ", no catch-up needed"
        return f"read from the stream when the replicas resumed ({m.resumes} resumes{gaps})"
    return "delivered after the heal"


def fault_answer(fig: BrokerFigures, e: FaultEffect) -> str:
    """One sentence: what this broker lost under this fault, and how it came back."""
    name, b = e.label, fig.broker
    inside = duration_text(e.inside.p99)
    if e.lost_eventual:
        text = (f"{b} lost {e.lost_eventual:,} deliveries for good under {name} "
                f"({e.lost_live:,} of {e.owed_live:,} owed were missed live).")
    elif e.lost_live:
        text = (f"{b} missed {e.lost_live:,} of {e.owed_live:,} deliveries live under {name}, every one "
                f"{_how(fig.mechanism)}: lost for good 0.")
    elif e.late:
        text = (f"{b} lost nothing under {name}, but {e.late:,} of {e.owed_live:,} deliveries owed during it "
                f"arrived late (p99 {inside}, worst {duration_text(e.inside.max)}), {_how(fig.mechanism)}.")
    elif e.publish_failed:
        text = (f"{b} lost nothing under {name}; {e.publish_failed:,} of {e.publishes:,} publishes during it "
                f"were refused (never acknowledged, so never owed).")
    elif e.slowed:
        text = (f"{b} lost nothing under {name}; delivery slowed to p99 {inside} "
                f"(steady {duration_text(e.steady_p99_ms)}).")
    else:
        return (f"{b} was unaffected by {name}: nothing lost or late, delivery p99 {inside} during it "
                f"(steady {duration_text(e.steady_p99_ms)}).")
    if e.recovered_s is not None:
        text += (f" Deliveries were complete and delivery p99 back to normal {e.recovered_s:.1f} s "
                 f"after the heal.")
    elif e.status in ("not recovered", "slow"):
        text += (" Deliveries were not complete again, or delivery p99 not back to normal, within the "
                 "heal window.")
    return text


def answers(brokers: list[BrokerFigures]) -> list[str]:
    """A sentence per broker and fault; a steady-state line for a run without faults."""
    out = []
    for fig in brokers:
        if fig.faults:
            out.extend(fault_answer(fig, e) for e in fig.faults)
        else:
            lost = (f"lost {fig.lost_eventual:,} for good" if fig.lost_eventual
                    else f"missed {fig.lost_live:,} live" if fig.lost_live else "lost nothing")
            out.append(f"{fig.broker} {lost} (no faults); delivery p99 {duration_text(fig.delivery.p99)}.")
    return out


def _impact(fig: BrokerFigures) -> int:
    return sum(e.lost_live + e.late + e.publish_failed for e in fig.faults)


def _sustained(fig: BrokerFigures) -> float:
    return fig.rate.sustained if fig.rate is not None and fig.rate.sustained else 0.0


def _steady_p99(fig: BrokerFigures) -> float:
    return fig.delivery_steady.p99 if fig.delivery_steady.p99 is not None else math.inf


@dataclass(frozen=True)
class _Criterion:
    """One measure, lower is better, and how far from the best still counts as level:
    repeated runs differ by a few late deliveries and some percent of latency, and such
    noise must not pick the winner."""

    name: str
    value: Callable[[BrokerFigures], float]
    slack: Callable[[float], float]


_CRITERIA = (
    _Criterion("safety", lambda f: float(not f.safe), lambda best: 0.0),
    _Criterion("lost live", lambda f: float(f.lost_live), lambda best: max(2.0, 0.25 * best)),
    _Criterion("targets", lambda f: float(len(f.failed_targets)), lambda best: 0.0),
    _Criterion("harm", lambda f: float(_impact(f)), lambda best: max(2.0, 0.25 * best)),
    # Rate steps are a factor of about 1.25 apart when the search ends: closer is a tie.
    _Criterion("capacity", lambda f: -_sustained(f), lambda best: 0.2 * abs(best)),
    _Criterion("latency", _steady_p99, lambda best: 0.2 * best + 1.0),
)


def _why(criterion: str, best: BrokerFigures, behind: list[BrokerFigures]) -> str:
    names = ", ".join(o.broker for o in behind)
    if criterion == "safety":
        return f"it lost nothing for good and duplicated nothing, unlike {names}"
    if criterion == "lost live":
        counts = ", ".join(f"{o.broker} {o.lost_live:,}" for o in behind)
        return f"it missed the fewest deliveries live ({best.lost_live:,}, against {counts})"
    if criterion == "targets":
        missed = ", ".join(f"{o.broker} missed {len(o.failed_targets)}" for o in behind)
        return f"it met more latency targets ({missed})"
    if criterion == "harm":
        faults = " and ".join(dict.fromkeys(e.label for e in best.faults)) or "the faults"
        harm = ", ".join(f"{o.broker} {_impact(o):,}" for o in behind)
        return (f"it came through {faults} with the least harm ({_impact(best):,} deliveries late or missed "
                f"and publishes refused, against {harm})")
    if criterion == "capacity":
        rates = ", ".join(f"{o.broker} {rate_text(_sustained(o) or None)}" for o in behind)
        return f"it sustains the most fan-out ({rate_text(_sustained(best))}, against {rates})"
    p99s = ", ".join(f"{o.broker} {duration_text(_steady_p99(o))}" for o in behind)
    return f"it delivers fastest outside faults (p99 {duration_text(_steady_p99(best))}, against {p99s})"


def recommend(brokers: list[BrokerFigures]) -> Recommendation:
    """Keep the brokers level with the best on each criterion in turn; the reasons are
    the criteria that dropped the others."""
    if not brokers:
        return Recommendation(None, "No broker finished a run: nothing to compare.")
    rated = any(_sustained(b) for b in brokers)
    remaining = list(brokers)
    dropped: list[tuple[str, list[BrokerFigures]]] = []
    for criterion in _CRITERIA:
        if criterion.name == "capacity" and not rated:
            continue
        best = min(criterion.value(b) for b in remaining)
        level = [b for b in remaining if criterion.value(b) <= best + criterion.slack(best)]
        behind = [b for b in remaining if b not in level]
        if behind:
            dropped.append((criterion.name, behind))
        remaining = level
        if len(remaining) == 1:
            break
    winner = min(remaining, key=_steady_p99)
    if not winner.safe:
        return Recommendation(None, "No broker to recommend from these runs: every one lost deliveries for good "
                                    "or duplicated them (see the table).")
    if len(brokers) == 1:
        return Recommendation(winner.broker, f"Use {winner.broker}: it is the only broker with a finished run.")
    reasons = [_why(name, winner, behind) for name, behind in dropped]
    if len(remaining) > 1:
        others = ", ".join(b.broker for b in remaining if b is not winner)
        level_text = (f"{winner.broker} and {others} are level on loss, targets, harm under the faults"
                      + (", capacity" if rated else "") + " and latency within run-to-run noise")
        headline = f"Use {winner.broker} or {others}: {level_text}"
        headline += f"; they beat the rest because {'; '.join(reasons)}." if reasons else "."
    else:
        headline = f"Use {winner.broker}: {'; '.join(reasons)}."
    return Recommendation(winner.broker, headline, tuple(_tradeoffs(winner, [b for b in brokers if b is not winner])))


def _tradeoffs(best: BrokerFigures, others: list[BrokerFigures]) -> list[str]:
    out = []
    for o in others:
        if not o.safe:
            out.append(f"{o.broker} is no alternative: it lost {o.lost_eventual:,} deliveries for good"
                       + (f" and duplicated {o.duplicated:,}" if o.duplicated else "") + ".")
            continue
        if o.rate and best.rate and o.rate.sustained and best.rate.sustained \
                and o.rate.sustained > 1.2 * best.rate.sustained:
            out.append(f"{o.broker} sustains more fan-out ({rate_text(o.rate.sustained)} against "
                       f"{rate_text(best.rate.sustained)}): prefer it above that rate if its behaviour under "
                       f"the faults is acceptable.")
        elif (o.delivery_steady.p99 is not None and best.delivery_steady.p99 is not None
              and o.delivery_steady.p99 < 0.8 * best.delivery_steady.p99):
            out.append(f"{o.broker} delivers faster in steady state (p99 {duration_text(o.delivery_steady.p99)} "
                       f"against {duration_text(best.delivery_steady.p99)}).")
    return out
