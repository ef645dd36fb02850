"""Replica attribution: do the records say which replica each socket and publish hit?

The publisher → subscriber replica matrix, the same/cross-instance latency split and
the per-replica view of a fault all need it. The load records it from the harness's
load balancer (the `X-Gauntlet-Replica` response header, the WebSocket 101 included)
or from the app itself (a welcome frame's or an ack's instance). Where neither said
anything, for example with `--host` to the user's own load balancer, the report says
so in one line instead of showing a matrix of `?`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from common.state import REPLICA_HEADER
from reports.records import RunData


UNAVAILABLE = "replica attribution unavailable"
PARTIAL = "replica attribution partial"
_WHY = (f"no {REPLICA_HEADER} header (the load did not go through gauntlet's load balancer, "
        "e.g. --host to another one) and no welcome frame or ack naming a replica")


@dataclass(frozen=True)
class Attribution:
    """How many connections and acknowledged publishes name their replica."""

    connections: int
    connections_named: int
    publishes: int
    publishes_named: int
    replicas: tuple[str, ...]

    @property
    def subscribers_named(self) -> bool:
        return self.connections_named > 0

    @property
    def publishers_named(self) -> bool:
        return self.publishes_named > 0

    @property
    def available(self) -> bool:
        """Both ends of a delivery can be placed on a replica, for at least some traffic."""
        return self.subscribers_named and self.publishers_named

    @property
    def note(self) -> str | None:
        """One line for the report, or None when every record names its replica."""
        c_missing = self.connections - self.connections_named
        p_missing = self.publishes - self.publishes_named
        if not self.connections and not self.publishes:
            return None
        if not self.subscribers_named and not self.publishers_named:
            return (f"{UNAVAILABLE}: none of {self.connections:,} connections and {self.publishes:,} "
                    f"acknowledged publishes named a replica ({_WHY}); no replica matrix, no same/cross split")
        if self.connections and not self.subscribers_named:
            return (f"{UNAVAILABLE} for subscribers: none of {self.connections:,} connections named a replica "
                    f"({_WHY}); no replica matrix, no same/cross split")
        if self.publishes and not self.publishers_named:
            return (f"{UNAVAILABLE} for publishes: none of {self.publishes:,} acknowledged publishes named the "
                    f"replica that accepted it ({_WHY}); the matrix has no publisher side")
        if c_missing or p_missing:
            parts = []
            if c_missing:
                parts.append(f"{c_missing:,} of {self.connections:,} connections")
            if p_missing:
                parts.append(f"{p_missing:,} of {self.publishes:,} acknowledged publishes")
            return f"{PARTIAL}: {' and '.join(parts)} without a replica (shown as ?)"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "replicas": list(self.replicas), "available": self.available, "note": self.note}


def _named(series: pd.Series) -> np.ndarray:
    values = series.astype(object).to_numpy()
    return np.array([v is not None and v == v and str(v).strip() not in ("", "?") for v in values], dtype=bool) \
        if len(values) else np.zeros(0, dtype=bool)


def attribution_of(run: RunData) -> Attribution:
    """Count from the raw records (connect rows, acknowledged publishes)."""
    conn, pub = run.conn, run.pub
    connects = conn[(conn["event"].astype(object) == "connect").to_numpy()]
    acked = pub[(pub["outcome"].astype(object) == "ok").to_numpy()]
    c_named = _named(connects["instance"])
    p_named = _named(acked["instance"])
    names = set(connects["instance"].astype(object).to_numpy()[c_named]) | set(
        acked["instance"].astype(object).to_numpy()[p_named])
    return Attribution(connections=len(connects), connections_named=int(c_named.sum()),
                       publishes=len(acked), publishes_named=int(p_named.sum()),
                       replicas=tuple(sorted(str(n) for n in names)))
