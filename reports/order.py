"""Order: did each subscriber receive its messages in an order the system may produce?

Judged on live first deliveries of messages addressed to the subscriber (a replay
after a resume comes in any order; a duplicate's first copy is the one judged;
misrouted and unpublished keys are the delivery check's), per subscriber *connection*
in receive order (receive time, ties by the frame's place in its file). A new
connection is a new stream: what it missed meanwhile is the loss check's business,
and a library that re-sends missed messages on reconnect (Socket.IO's connection
state recovery) sends them first, before anything newer.

Three orders, from what the load generator knows:

- **real-time** (a requirement): if publish A was acknowledged (`ts_ack`) before
  publish B was sent (`ts_sent`), B cannot have entered the system before A did, so a
  subscriber that receives both live must receive A first. A delivery of A is *late*
  when a delivery received before it on the same stream has `ts_sent > A.ts_ack`: the
  running maximum of `ts_sent` over the receive prefix exceeds A's acknowledgement.
  Equal times are no violation (nothing shows A finished first). Only acknowledged
  publishes (outcome ok) can be A: a failed or unknown publish has no acknowledgement
  that bounds it. Any delivered message can be B: its `ts_sent` bounds the earliest
  moment it could exist. The generator takes `ts_sent` before the request leaves and
  `ts_ack` after the answer is read, so clock reading errs towards no violation. A
  broker may order *concurrent* publishes either way; this order never blames that.
- **per-publisher sequence** (informational): keys are `<publisher>-<seq>`, the
  sequence allocated at send time by one load process whose users publish
  concurrently. A message received before an earlier-sequenced one of the same
  publisher is counted; it is a defect only where the two were not concurrent, and
  then the real-time order has counted it already.
- **server ids** (informational, where the app returns ids): a delivery whose id is
  below one received before it on the stream. Ids that a database assigns at commit
  are ordered by commit, not by when each replica handed the message to its broker,
  so concurrent publishes may invert them legitimately.

Every count is split per phase, per subscriber and per publisher → subscriber replica
pair. A violation's phase is the worse of the phases of the late message's send and
its receipt (fault over after-heal over steady): a message delayed by a fault that
began after it was sent is the fault's doing, not steady state's.

Everything is array operations: rows are sorted once by stream, and one running
maximum over `stream * span + value` (exact int64 arithmetic) restarts at each
stream, because every value of a later stream exceeds every value of an earlier one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from reports.phases import AFTER_HEAL, FAULT, PHASES, STEADY

REALTIME, SEQUENCE, IDS = "realtime", "sequence", "ids"
ORDERS = (REALTIME, SEQUENCE, IDS)
TITLES = {REALTIME: "real-time (acknowledged before sent)", SEQUENCE: "per-publisher sequence",
          IDS: "server ids"}
REQUIRED = {REALTIME: True, SEQUENCE: False, IDS: False}
EXAMPLES = 20  # violations listed per order in summaries (the csv export has them all)
_MISSING = np.int64(-1)
_NEVER = np.iinfo(np.int64).max
# Phase codes are (steady, fault, after_heal); a violation takes the worse of two, by
# severity steady 0 < after_heal 1 < fault 2. (Code to severity happens to be its own inverse.)
_SEVERITY = np.array([0, 2, 1], dtype="int8")
_BY_SEVERITY = _SEVERITY


@dataclass(frozen=True)
class Deliveries:
    """Live first deliveries, one row each, as aligned arrays (any row order).

    Names come back only for the violations listed; everything else is codes.
    """

    sub: np.ndarray         # subscriber code (int)
    conn: np.ndarray        # connection number (float, NaN: unknown, one stream per subscriber)
    ts: np.ndarray          # receive time
    row: np.ndarray         # place in the received-frames table (tie-break for equal times)
    sent: np.ndarray        # ts_sent of the message (NaN: unknown)
    ack: np.ndarray         # ts_ack of an acknowledged publish, NaN otherwise
    key: np.ndarray         # key code
    publisher: np.ndarray   # publisher code from the key (-1: key not <publisher>-<seq>)
    seq: np.ndarray         # sequence number from the key (-1: none)
    id: np.ndarray          # server id (float, NaN: none)
    origin: np.ndarray      # replica code that accepted the publish
    instance: np.ndarray    # replica code the subscriber was connected to
    path: np.ndarray        # same / cross / unknown instance, as codes into the caller's path names
    sent_phase: np.ndarray  # phase code (0 steady, 1 fault, 2 after heal) of the send
    recv_phase: np.ndarray  # phase code of the receipt


@dataclass(frozen=True)
class OrderSummary:
    """One order: whether it could be judged, on how many deliveries, and what broke."""

    order: str
    title: str
    required: bool
    checked: bool
    reason: str                 # what was judged, or why nothing could be
    judged: int                 # deliveries with something received before them to compare with
    violations: int
    by_phase: dict[str, int] = field(default_factory=dict)
    judged_by_phase: dict[str, int] = field(default_factory=dict)
    subscribers: int = 0        # subscribers with at least one violation
    worst_subscribers: list[dict[str, Any]] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class OrderAnalysis:
    """The order tables the checks, metrics and report read.

    `samples` has one row per live first delivery with, per order, whether it was
    judged and whether it was late; `violations` one row per (order, late delivery).
    """

    samples: pd.DataFrame
    violations: pd.DataFrame
    by_pair: pd.DataFrame
    summaries: dict[str, OrderSummary]

    @property
    def realtime(self) -> OrderSummary:
        return self.summaries[REALTIME]

    @property
    def realtime_violations(self) -> pd.DataFrame:
        v = self.violations
        return v[v["order"] == REALTIME].reset_index(drop=True) if len(v) else v

    def steady_violations(self, order: str = REALTIME) -> int:
        return int(self.summaries[order].by_phase.get(STEADY, 0))


def parse_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Publisher code and sequence number of each `<publisher>-<seq>` key (-1, -1 for
    other keys), and the publisher names. Called on published keys only (one per
    publish, not per received frame)."""
    if not len(keys):
        return np.empty(0, "int64"), np.empty(0, "int64"), []
    # One plain loop over the published keys: pandas' string methods cost several
    # times more here. isdecimal() is exactly regex \d on str (Unicode Nd), and int()
    # reads every such digit.
    heads: list[str | None] = []
    seq = np.full(len(keys), -1, dtype="int64")
    for i, key in enumerate(keys):
        text = key if isinstance(key, str) else (None if key is None or key != key else str(key))
        head, dash, tail = text.rpartition("-") if text is not None else ("", "", "")
        if dash and head and 0 < len(tail) <= 18 and tail.isdecimal():
            heads.append(head)
            seq[i] = int(tail)
        else:
            heads.append(None)
    codes, names = pd.factorize(np.asarray(heads, dtype=object), use_na_sentinel=True)
    return codes.astype("int64"), seq, [str(n) for n in names]


def analyze(d: Deliveries, *, sub_names: np.ndarray, key_names: np.ndarray, vocab: list[str],
            path_names: Sequence[str], has_acks: bool) -> OrderAnalysis:
    """Judge the three orders over the deliveries."""
    n = len(d.ts)
    conn_all = np.nan_to_num(d.conn, nan=-1.0)
    stream_order = np.lexsort((d.row, d.ts, *_stream_keys(d.sub, conn_all)))
    conn = conn_all[stream_order]
    sub = d.sub[stream_order]
    starts = np.ones(n, dtype=bool)
    if n:
        starts[1:] = (sub[1:] != sub[:-1]) | (conn[1:] != conn[:-1])
    phase = np.asarray(_BY_SEVERITY[np.maximum(_SEVERITY[d.sent_phase], _SEVERITY[d.recv_phase])])

    judged: dict[str, np.ndarray] = {}
    late: dict[str, np.ndarray] = {}
    behind: dict[str, np.ndarray] = {}

    # Real-time: the latest send among earlier receipts against this one's acknowledgement.
    base = _base(d.sent, d.ack)
    sent_us = _micros(d.sent, base)[stream_order]
    ack_us = _micros(d.ack, base)[stream_order]
    best, holder = prefix_max(starts, sent_us)
    ok = ack_us >= 0
    judged[REALTIME] = ok & (best >= 0)
    late[REALTIME] = judged[REALTIME] & (best > ack_us)
    behind[REALTIME] = holder

    # Per-publisher sequence: streams split further by publisher.
    pub = d.publisher[stream_order]
    by_pub = np.lexsort((np.arange(n), pub, np.cumsum(starts)))  # stable: keeps receive order
    has_pub = pub[by_pub] >= 0
    p_starts = np.ones(n, dtype=bool)
    if n:
        sp, pp = np.cumsum(starts)[by_pub], pub[by_pub]
        p_starts[1:] = (sp[1:] != sp[:-1]) | (pp[1:] != pp[:-1])
    seq = np.where(has_pub, d.seq[stream_order][by_pub], _MISSING)
    p_best, p_holder = prefix_max(p_starts, seq)
    seq_judged = has_pub & (p_best >= 0)
    seq_late = seq_judged & (p_best > seq)
    judged[SEQUENCE], late[SEQUENCE], behind[SEQUENCE] = (np.empty(n, bool), np.empty(n, bool),
                                                          np.empty(n, "int64"))
    judged[SEQUENCE][by_pub], late[SEQUENCE][by_pub] = seq_judged, seq_late
    behind[SEQUENCE][by_pub] = np.where(p_holder >= 0, by_pub[np.maximum(p_holder, 0)], -1)

    # Server ids.
    ids = d.id[stream_order]
    has_id = ~np.isnan(ids)
    # Dense ranks keep any id (negative, or beyond 2^53) exact and the span small.
    id_value = np.full(n, -1, dtype="int64")
    id_value[has_id] = _ranks(ids[has_id], streams=int(starts.sum()))
    i_best, i_holder = prefix_max(starts, id_value)
    judged[IDS] = has_id & (i_best >= 0)
    late[IDS] = judged[IDS] & (i_best > id_value)
    behind[IDS] = i_holder

    so = stream_order
    samples = pd.DataFrame({
        "ts": d.ts[so], "sub": sub, "conn": conn, "key": d.key[so],
        "origin": _categorical(d.origin[so], vocab), "instance": _categorical(d.instance[so], vocab),
        "path": pd.Categorical.from_codes(d.path[so], categories=list(path_names)),
        "phase": pd.Categorical.from_codes(phase[so], categories=list(PHASES)),
    })
    for order in ORDERS:
        samples[f"judged_{order}"] = judged[order]
        samples[f"late_{order}"] = late[order]
    violations = _violations(samples, late, behind, sent_us, ack_us, base, d, so, sub_names, key_names)
    reasons = _reasons(d, has_acks, judged)
    summaries = {o: _summary(o, samples, violations, reasons[o]) for o in ORDERS}
    return OrderAnalysis(samples=samples, violations=violations, by_pair=_by_pair(samples), summaries=summaries)


def _stream_keys(sub: np.ndarray, conn: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sort keys (last is primary) ordering rows by subscriber, then connection: one
    exact int64 key when the connection numbers are small whole numbers, else both."""
    if len(conn) and np.all(conn == np.floor(conn)) and conn.min() >= -1 and conn.max() < 2 ** 20 \
            and sub.min() >= 0 and sub.max() < 2 ** 40:
        return (sub.astype("int64") * (2 ** 21) + (conn.astype("int64") + 1),)
    return conn, sub


def _ranks(ids: np.ndarray, streams: int) -> np.ndarray:
    """Ids as int64 values >= 0 in the same order (equal ids equal): the ids less the
    smallest where they are whole numbers close enough together for prefix_max's exact
    arithmetic, else their dense ranks (a sort)."""
    if len(ids):
        lo, hi = float(ids.min()), float(ids.max())
        if (hi - lo < 2 ** 40 and (hi - lo + 2) * (streams + 1) < 2 ** 61
                and abs(lo) < 2 ** 52 and abs(hi) < 2 ** 52 and np.all(ids == np.floor(ids))):
            return (ids - lo).astype("int64")
    return np.unique(ids, return_inverse=True)[1]


def prefix_max(starts: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the largest `value` among the earlier rows of its stream, and the
    position of the row that holds it; (-1, -1) where there is none.

    Rows are in stream order; `starts` marks each stream's first row. Values are
    int64, >= 0 where present and -1 where missing (missing rows never hold a maximum).
    One running maximum serves every stream: a stream's offset exceeds every value of
    the streams before it, so the maximum restarts at each stream without a loop.
    """
    n = len(value)
    if n == 0:
        return np.empty(0, "int64"), np.empty(0, "int64")
    shifted = value.astype("int64") + 1          # missing -> 0, present >= 1
    span = int(shifted.max()) + 1
    rank = np.cumsum(starts, dtype="int64") - 1
    if span * (int(rank[-1]) + 1) >= 2 ** 62:    # cannot happen for real runs; stay exact anyway
        return _prefix_max_grouped(rank, value)
    offset = rank * span
    key = offset + shifted
    running = np.maximum.accumulate(key)
    earlier = np.empty(n, dtype="int64")
    earlier[0] = -1
    earlier[1:] = running[:-1]
    # Below this stream's offset: nothing earlier in it; at the offset: only missing values.
    best = earlier - offset - 1
    best[best < 0] = -1
    # The row that set the running maximum last (a tie hands it to the later row).
    holder_now = np.maximum.accumulate(np.where(key == running, np.arange(n), 0))
    holder = np.empty(n, dtype="int64")
    holder[0] = -1
    holder[1:] = holder_now[:-1]
    holder[best < 0] = -1
    return best, holder


def _prefix_max_grouped(rank: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.DataFrame({"g": rank, "v": value.astype("int64")})
    cummax = frame.groupby("g")["v"].cummax()
    best = cummax.groupby(frame["g"]).shift(1).fillna(-1).astype("int64").to_numpy()
    pos = pd.Series(np.where(value == cummax.to_numpy(), np.arange(len(value)), -1))
    holder = pos.groupby(frame["g"]).cummax().groupby(frame["g"]).shift(1).fillna(-1).astype("int64").to_numpy()
    holder[best < 0] = -1
    best[best < 0] = -1
    return best, holder


def _base(*times: np.ndarray) -> float:
    lows = [np.nanmin(t) for t in times if len(t) and not np.isnan(t).all()]
    return float(np.floor(min(lows))) if lows else 0.0


def _micros(times: np.ndarray, base: float) -> np.ndarray:
    """Times as int64 microseconds after `base` (records carry six decimals, so this is
    exact), -1 where missing."""
    out = np.full(len(times), -1, dtype="int64")
    present = ~np.isnan(times)
    out[present] = np.rint((times[present] - base) * 1e6).astype("int64")
    return out


def _categorical(codes: np.ndarray, vocab: list[str]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes.astype("int16"), categories=vocab)


def _violations(samples: pd.DataFrame, late: dict[str, np.ndarray], behind: dict[str, np.ndarray],
                sent_us: np.ndarray, ack_us: np.ndarray, base: float, d: Deliveries, so: np.ndarray,
                sub_names: np.ndarray, key_names: np.ndarray) -> pd.DataFrame:
    parts = []
    seq_sorted, id_sorted = d.seq[so], d.id[so]
    for order in ORDERS:
        rows = np.flatnonzero(late[order])
        if not len(rows):
            continue
        other = behind[order][rows]
        part = pd.DataFrame({
            "order": order, "ts": samples["ts"].to_numpy()[rows],
            "sub": sub_names[samples["sub"].to_numpy()[rows]], "conn": samples["conn"].to_numpy()[rows],
            "key": key_names[samples["key"].to_numpy()[rows]],
            "behind": key_names[samples["key"].to_numpy()[other]],
            "origin": samples["origin"].to_numpy()[rows], "instance": samples["instance"].to_numpy()[rows],
            "phase": samples["phase"].to_numpy()[rows],
        })
        if order == REALTIME:
            # How long before the overtaking message was sent this one was acknowledged.
            part["margin_ms"] = (sent_us[other] - ack_us[rows]) / 1000.0
            part["ack"] = base + ack_us[rows] / 1e6
            part["behind_sent"] = base + sent_us[other] / 1e6
        elif order == SEQUENCE:
            part["margin_ms"] = np.nan
            part["seq"], part["behind_seq"] = seq_sorted[rows], seq_sorted[other]
        else:
            part["margin_ms"] = np.nan
            part["id"], part["behind_id"] = id_sorted[rows], id_sorted[other]
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["order", "ts", "sub", "conn", "key", "behind", "origin", "instance", "phase",
                                     "margin_ms"])
    return pd.concat(parts, ignore_index=True).sort_values(["order", "ts"], kind="stable").reset_index(drop=True)


def _reasons(d: Deliveries, has_acks: bool, judged: dict[str, np.ndarray]) -> dict[str, str]:
    n = len(d.ts)
    out = {}
    if not n:
        return dict.fromkeys(ORDERS, "no live deliveries")
    out[REALTIME] = ("no publish has an acknowledgement time (ts_ack)" if not has_acks else
                     "no subscriber received a message after another one on the same connection"
                     if not judged[REALTIME].any() else
                     "a message acknowledged before another was sent must be received first")
    parsed = int((d.publisher >= 0).sum())
    out[SEQUENCE] = ("message keys are not <publisher>-<seq>" if parsed == 0 else
                     "no subscriber received two messages of one publisher on one connection"
                     if not judged[SEQUENCE].any() else
                     "informational: one load process's users publish concurrently, so any broker may "
                     "reorder them" + (f"; {n - parsed:,} deliveries' keys are not <publisher>-<seq>"
                                       if parsed < n else ""))
    with_id = int((~np.isnan(d.id)).sum())
    out[IDS] = ("the app returns no message ids" if with_id == 0 else
                "no subscriber received two messages with ids on one connection" if not judged[IDS].any() else
                "informational: ids assigned at commit need not follow the broker's order for "
                "concurrent publishes")
    return out


def _summary(order: str, samples: pd.DataFrame, violations: pd.DataFrame, reason: str) -> OrderSummary:
    j = samples[f"judged_{order}"].to_numpy()
    lt = samples[f"late_{order}"].to_numpy()
    phase_codes = np.asarray(samples["phase"].cat.codes)
    by_phase = {p: int(lt[phase_codes == i].sum()) for i, p in enumerate(PHASES)}
    judged_by_phase = {p: int(j[phase_codes == i].sum()) for i, p in enumerate(PHASES)}
    mine = violations[violations["order"] == order] if len(violations) else violations
    worst: list[dict[str, Any]] = []
    subscribers = 0
    if len(mine):
        per_sub = mine.groupby("sub").size().sort_values(ascending=False, kind="stable")
        subscribers = len(per_sub)
        worst = [{"sub": str(s), "violations": int(c)} for s, c in per_sub.head(10).items()]
        # Steady-state violations first: those are the ones that fail a run.
        rank = mine["phase"].astype(object).map({STEADY: 0, AFTER_HEAL: 1, FAULT: 2}).to_numpy()
        shown = mine.iloc[np.argsort(rank, kind="stable")[:EXAMPLES]]
        examples = [_example(r) for r in shown.to_dict(orient="records")]
    else:
        examples = []
    return OrderSummary(order=order, title=TITLES[order], required=REQUIRED[order], checked=bool(j.any()),
                        reason=reason, judged=int(j.sum()), violations=int(lt.sum()), by_phase=by_phase,
                        judged_by_phase=judged_by_phase, subscribers=subscribers, worst_subscribers=worst,
                        examples=examples)


def _example(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in ("ts", "sub", "key", "behind", "origin", "instance", "phase")}
    out["conn"] = None if row["conn"] < 0 else int(row["conn"])
    for k in ("margin_ms", "seq", "behind_seq", "id", "behind_id"):
        if k in row and row[k] is not None and not (isinstance(row[k], float) and np.isnan(row[k])):
            out[k] = row[k]
    return out


def _by_pair(samples: pd.DataFrame) -> pd.DataFrame:
    """Judged and late deliveries per (publisher replica, subscriber replica, phase)."""
    agg = {}
    for order in ORDERS:
        agg[f"judged_{order}"] = (f"judged_{order}", "sum")
        agg[f"late_{order}"] = (f"late_{order}", "sum")
    if not len(samples):
        return pd.DataFrame(columns=["origin", "instance", "phase", *agg])
    return samples.groupby(["origin", "instance", "phase"], observed=True).agg(**agg).reset_index()


def describe(summaries: dict[str, dict[str, Any]] | dict[str, OrderSummary]) -> str:
    """One line for people: which orders were checked and what they found."""
    parts = []
    for name in ORDERS:
        s = summaries.get(name)
        if s is None:
            continue
        s = s.to_dict() if isinstance(s, OrderSummary) else s
        label = TITLES[name].split(" (")[0]
        if not s["checked"]:
            parts.append(f"{label} not checked ({s['reason']})")
            continue
        phases = s["by_phase"]
        text = f"{label} {s['violations']:,} late of {s['judged']:,}"
        if s["violations"]:
            text += " (" + ", ".join(f"{p.replace('_', ' ')} {phases.get(p, 0):,}" for p in PHASES) + ")"
        parts.append(text + ("" if s["required"] else " [informational]"))
    return "order: " + "; ".join(parts)
