"""The delivery checker: did every subscriber get every message it was owed, once?

Categories follow Jepsen's total-queue checker, over publishes (pub.csv), received
frames (recv.csv) and connection events (conn.csv):

- lost: an acknowledged publish (outcome ok) that an addressed subscriber never saw.
  Counted twice, under two expectations:
  *live*: the subscriber had one connection open from the publish's ts_sent through
  its ts_ack + grace, so the message should have arrived on it as a live frame;
  *eventual*: the subscriber had connected before ts_sent and was still (or again)
  connected after ts_ack + grace, so it could have received it live or by resume.
  A subscriber that first connects after the publish is not addressed at all.
  A message published inside a fault window is owed eventually only to subscribers
  still there after that fault healed (+ grace): one that left before the heal (the
  load ended while a hand-driven partition was still on) never saw the system get a
  chance to deliver it. Such an undelivered pair is *unjudged*, not lost, and the
  check says unknown because of it, naming the faults.
- duplicated: a (subscriber, key) delivered again as a live frame, or replayed twice on
  one connection. A replay of a key the subscriber already had is the expected overlap
  of a resume and not a duplicate.
- unexpected: a frame whose key was never published (nor is traceable).
- recovered: a publish whose outcome was unknown (timeout) but that was seen.
- late: a live first delivery slower than `late_after_s` (recv ts - sent_ts).
- out of order (reports/order.py): real-time order, judged per subscriber connection
  without server ids: a live first delivery received after a message that was sent
  after it had been acknowledged. Per-publisher sequence and server-id order are
  counted beside it, as information.
- corrupted: a frame whose padded payload (`--payload-size`) did not arrive as sent:
  its digest does not match its text, or the pad is missing (recv.csv `intact` = 0).
  A broker's size limit or a re-encoding that cuts or alters data shows here.
- misrouted: a user publish delivered to a subscriber of another user. Jepsen has no
  such category; for notifications it is the worst failure (another user's data).

Shaped subscribers (scenarios/shapes.py: slow or stalled readers, clients that vanish
without a close; conn.csv `shape=<name>` on connect) are owed their messages
eventually only: a server may rightly drop a reader that stopped reading and let it
catch up. What they must not cost the others is the `isolation` check's question.

Addressing: a user publish addresses every subscriber with that user; a broadcast
addresses every subscriber. Everything is computed with array operations and pandas
merges; nothing loops per record (bench/report_bench.py holds that to its budget).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from reports import order, recovery
from reports.attribution import Attribution, attribution_of
from reports.phases import AFTER_HEAL, FAULT, PHASES, STEADY, active_faults, phase_of
from reports.records import SHAPE_PREFIX, RunData
from reports.records import parse_shape_detail as parse_shape
from reports.recovery import FaultRecovery
from reports.check import CheckResult, Verdict

SAME, CROSS, UNKNOWN_PATH = "same", "cross", "unknown"
_PATHS = (SAME, CROSS, UNKNOWN_PATH)
OFFLINE = "offline"  # the subscriber instance of a pair whose subscriber was disconnected
UNKNOWN_INSTANCE = "?"  # a replica name the records did not give


@dataclass(frozen=True)
class DeliveryOptions:
    """The knobs that decide what counts as expected, late and recovered."""

    grace_s: float = 1.0            # fan-out time allowed after the publish is acknowledged
    late_after_s: float = 1.0       # a live delivery slower than this is late
    heal_window_s: float = 30.0     # "after heal" phase length, and the recovery deadline
    recovery_factor: float = 1.5    # p99 is recovered when back within this × its steady level
    rolling_window_s: float = 5.0   # the rolling window the recovered p99 is computed over
    min_window_samples: int = 5     # fewer samples in the window says nothing yet


@dataclass(frozen=True)
class DeliveryCounts:
    publishes: int = 0
    acknowledged: int = 0
    failed: int = 0
    unknown: int = 0
    frames: int = 0
    subscribers: int = 0
    expected_live: int = 0
    delivered_live: int = 0
    lost_live: int = 0
    expected_eventual: int = 0
    delivered_eventual: int = 0
    lost_eventual: int = 0
    unjudged: int = 0            # undelivered, but the subscriber left before the fault healed
    duplicated: int = 0          # (subscriber, key) pairs delivered more than once
    duplicate_frames: int = 0    # the extra frames
    resume_overlap_frames: int = 0
    unexpected: int = 0          # distinct keys never published
    unexpected_frames: int = 0
    recovered: int = 0           # unknown-outcome publishes that were seen
    failed_seen: int = 0         # failed publishes that were seen anyway
    misrouted: int = 0
    corrupted: int = 0           # frames whose padded payload was cut short or altered
    intact_checked: int = 0      # frames whose payload digest was checked
    late: int = 0
    out_of_order: int = 0        # live deliveries behind a message sent after they were acknowledged
    out_of_sequence: int = 0     # ... behind a later-sequenced message of the same publisher (informational)
    out_of_id_order: int = 0     # ... behind a higher server id (informational)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class DeliveryAnalysis:
    """Every delivery table the checks, metrics and plots read."""

    options: DeliveryOptions
    counts: DeliveryCounts
    pairs: pd.DataFrame          # one row per (ok publish, eventually addressed subscriber)
    latency: pd.DataFrame        # one row per live first delivery
    lost: pd.DataFrame           # pairs lost live or eventually, with names
    duplicates: pd.DataFrame     # one row per duplicate frame
    unexpected: pd.DataFrame     # one row per unexpected frame
    misrouted: pd.DataFrame
    recovered: pd.DataFrame      # one row per unknown-outcome publish that was seen
    corrupted: pd.DataFrame      # one row per frame whose payload did not arrive intact
    out_of_order: pd.DataFrame   # one row per real-time order violation
    by_phase: pd.DataFrame
    matrix: pd.DataFrame         # origin × subscriber instance × phase
    recovery: list[FaultRecovery]
    steady_p99_ms: float | None
    order: order.OrderAnalysis | None = None
    notes: list[str] = field(default_factory=list)
    has_connections: bool = True
    attribution: Attribution | None = None
    shaped: dict[str, str] = field(default_factory=dict)   # subscriber -> shape (slow, stalled, vanishing)
    shaped_codes: Any = None                               # the same as a bool array by subscriber code
    shaped_latency_ms: Any = None                          # their live first deliveries' latency


def analyze(run: RunData, options: DeliveryOptions | None = None) -> DeliveryAnalysis:
    """Compute (once per run and options) every delivery table."""
    options = options or DeliveryOptions()
    cache_key = ("delivery", options)
    if cache_key not in run.cache:
        run.cache[cache_key] = _Analysis(run, options).result()
    return run.cache[cache_key]


def check(run: RunData, options: DeliveryOptions | None = None) -> CheckResult:
    """Fail on eventual loss, duplicates, unexpected or misrouted messages, or on live
    loss in steady state; live loss inside a fault or its heal window is reported only."""
    a = analyze(run, options)
    c = a.counts
    details: dict[str, Any] = {"counts": c.to_dict(), "by_phase": _records(a.by_phase), "notes": a.notes,
                               "order": {k: v.to_dict() for k, v in a.order.summaries.items()} if a.order else {}}
    if c.publishes == 0:
        return CheckResult("delivery", Verdict.UNKNOWN, "no publishes recorded: nothing to check", details)
    if not a.has_connections:
        return CheckResult("delivery", Verdict.UNKNOWN,
                           "no connection events (conn.csv): cannot tell who was owed what", details)
    if c.expected_eventual == 0:
        return CheckResult("delivery", Verdict.UNKNOWN,
                           "no subscriber was connected when messages were published", details)
    steady_live = int(a.by_phase.loc[STEADY, "lost_live"]) if STEADY in a.by_phase.index else 0
    problems = []
    if c.lost_eventual:
        problems.append(f"{c.lost_eventual:,} lost for good")
    if steady_live:
        problems.append(f"{steady_live:,} lost live in steady state")
    if c.duplicated:
        problems.append(f"{c.duplicated:,} duplicated")
    if c.unexpected:
        problems.append(f"{c.unexpected:,} unexpected")
    if c.misrouted:
        problems.append(f"{c.misrouted:,} misrouted to another user")
    if c.corrupted:
        problems.append(f"{c.corrupted:,} corrupted (payload cut short or altered)")
        details["corrupted_examples"] = _records(a.corrupted.head(5))
    fault_live = c.lost_live - steady_live
    summary = (
        f"{c.expected_eventual:,} deliveries owed, {c.delivered_eventual:,} made; "
        f"live {c.delivered_live:,}/{c.expected_live:,}"
        + (f" ({fault_live:,} missed during faults)" if fault_live else "")
        + (f"; {c.recovered:,} recovered" if c.recovered else "")
        + (f"; {c.intact_checked:,} payload digests checked" if c.intact_checked else "")
    )
    if a.attribution is not None and a.attribution.note:
        summary += f"; {a.attribution.note}"
    if problems:
        return CheckResult("delivery", Verdict.FAIL, "; ".join(problems) + " — " + summary, details)
    if c.unjudged:
        faults = sorted({str(f) for f in a.pairs.loc[a.pairs["unjudged"], "fault"].dropna()})
        details["unjudged_faults"] = faults
        return CheckResult(
            "delivery", Verdict.UNKNOWN,
            f"{c.unjudged:,} deliveries cannot be judged: their subscribers left before "
            f"{', '.join(faults) or 'the fault'} healed (the load ended first) — " + summary, details)
    return CheckResult("delivery", Verdict.PASS, summary, details)


def check_recovery(run: RunData, options: DeliveryOptions | None = None) -> CheckResult:
    """Per healed fault: deliveries complete again and latency back to its steady level,
    both within the heal window (reports/recovery.py)."""
    a = analyze(run, options)
    rows = [r.to_dict() for r in a.recovery]
    if not a.recovery:
        return CheckResult("recovery", Verdict.PASS, "no faults to recover from", {"faults": rows})
    bad = [r for r in a.recovery if r.status in recovery.FAILED]
    unsure = [r for r in a.recovery if r.status in recovery.UNJUDGED]
    summary = "; ".join(recovery_summary(r) for r in a.recovery)
    if bad:
        return CheckResult("recovery", Verdict.FAIL, summary, {"faults": rows})
    if unsure:
        return CheckResult("recovery", Verdict.UNKNOWN, summary, {"faults": rows})
    return CheckResult("recovery", Verdict.PASS, summary, {"faults": rows})


def recovery_summary(r: FaultRecovery) -> str:
    """One fault's recovery for people: the status, then both times or why not."""
    head = f"{r.fault_id} {r.kind} {r.target}: {r.status}"
    if r.status in (recovery.RECOVERED, recovery.SLOW) and r.recovered_s is not None:
        head += f" in {r.recovered_s:.1f} s"
    return head + (f" ({r.reason})" if r.reason else "")


class _Analysis:
    """One pass over the run's tables; split in steps so each reads on its own."""

    def __init__(self, run: RunData, options: DeliveryOptions) -> None:
        self.run, self.o = run, options
        self.notes: list[str] = []
        self.run_end = run.t_end
        self.faults = active_faults(run)

    def result(self) -> DeliveryAnalysis:
        self._vocabulary()
        self._publishes()
        self._codes()
        self._connections()
        self._frames()
        self._expected_pairs()
        latency, ooo = self._latency()
        counts = self._counts(latency, ooo)
        by_phase = self._by_phase(latency)
        steady = latency.loc[latency["phase"] == STEADY, "latency_ms"]
        steady_p99 = float(np.percentile(steady, 99)) if len(steady) else None
        attribution = attribution_of(self.run)
        if attribution.note:
            self.notes.append(attribution.note)
        return DeliveryAnalysis(
            options=self.o, counts=counts, pairs=self.pairs, latency=latency, lost=self._lost_table(),
            duplicates=self._frame_table(self.dup_mask), unexpected=self._frame_table(self.unexpected_mask),
            misrouted=self._frame_table(self.misrouted_mask), recovered=self._recovered_table(),
            corrupted=self._frame_table(self.corrupted_mask),
            out_of_order=ooo, by_phase=by_phase, order=self.order_analysis,
            matrix=self._matrix(), recovery=self._recovery(latency), steady_p99_ms=steady_p99,
            notes=self.notes, has_connections=self.has_connections, attribution=attribution,
            shaped=self.shaped, shaped_codes=self.shaped_mask, shaped_latency_ms=self.shaped_latency_ms,
        )

    # -- publishes -----------------------------------------------------------------

    def _vocabulary(self) -> None:
        """Replica names as small integer codes shared by every table.

        Comparing and grouping codes is what keeps the analysis fast; names come back
        only in the small tables (lost pairs, duplicates) and as categoricals.
        """
        names = {UNKNOWN_INSTANCE: 0, OFFLINE: 1}
        r = self.run
        for col in (r.pub["instance"], r.recv["instance"], r.recv["origin"], r.conn["instance"]):
            for name in _categories(col):
                names.setdefault(str(name), len(names))
        self.vocab = list(names)
        self.vocab_index = names

    def _codes_of(self, series: pd.Series) -> np.ndarray:
        """Vocabulary codes of an instance column; missing is the unknown code 0."""
        if not isinstance(series.dtype, pd.CategoricalDtype):
            series = series.astype("category")
        mapping = np.array([self.vocab_index[str(c)] for c in series.cat.categories] + [0], dtype="int16")
        return mapping[series.cat.codes.to_numpy()]

    def _categorical(self, codes: np.ndarray) -> pd.Categorical:
        return pd.Categorical.from_codes(codes.astype("int16"), categories=self.vocab)

    def _publishes(self) -> None:
        pub = self.run.pub
        untraced = pub["key"].isna()
        if untraced.any():
            self.notes.append(f"{int(untraced.sum())} publishes without a key were ignored")
            pub = pub[~untraced]
        if pub["key"].duplicated().any():
            # A key published twice (a retry) counts once, with its best outcome: the
            # message exists if any attempt succeeded.
            rank = pub["outcome"].astype(object).map({"ok": 0, "unknown": 1, "fail": 2}).fillna(3)
            order = np.lexsort((pub["ts_sent"].to_numpy(), rank.to_numpy()))
            repeats = int(pub["key"].duplicated().sum())
            pub = pub.iloc[order].drop_duplicates("key", keep="first")
            self.notes.append(f"{repeats} repeated publish keys: each counted once, with its best outcome")
        pub = pub.reset_index(drop=True)
        odd = ~pub["outcome"].astype(object).isin(["ok", "fail", "unknown"])
        if odd.any():
            values = sorted(str(v) for v in pub.loc[odd, "outcome"].astype(object).unique())
            self.notes.append(f"{int(odd.sum())} publishes with an outcome other than ok/fail/unknown "
                              f"({', '.join(values[:5])}) are never owed")
        self.pub = pub
        self.p_outcome = _text(pub["outcome"])
        self.p_kind = _text(pub["kind"])
        self.p_user = _text(pub["user"])
        self.p_instance = self._codes_of(pub["instance"])
        self.p_sent = pub["ts_sent"].to_numpy(dtype="float64")
        ack = pub["ts_ack"].to_numpy(dtype="float64")
        self.p_ack = np.where(np.isnan(ack), self.p_sent, ack)
        self.p_id = pub["id"].to_numpy(dtype="float64", na_value=np.nan)
        self.p_phase, self.p_fault = phase_of(self.p_sent, self.faults, self.run_end, self.o.heal_window_s)
        self.p_phase_code = np.asarray(self.p_phase.codes)
        kind_codes, kind_names = pd.factorize(pub["kind"].astype(object).fillna("?"))
        self.p_kind_code, self.p_kind_names = kind_codes, list(kind_names)

    def _phases(self, pub_idx: np.ndarray) -> pd.Categorical:
        return pd.Categorical.from_codes(self.p_phase_code[pub_idx], categories=list(PHASES))

    def _codes(self) -> None:
        recv = self.run.recv
        if recv["sub"].isna().any():
            self.notes.append(f"{int(recv['sub'].isna().sum())} received frames without a subscriber were ignored")
            recv = recv[recv["sub"].notna()].reset_index(drop=True)
        self.recv = recv
        pub_codes, recv_codes, uniques = _factorize_both(self.pub["key"].to_numpy(dtype=object), recv["key"])
        n_pub = len(self.pub)
        self.f_key = recv_codes
        # An untraceable frame (no key) is its own unexpected message.
        missing = self.f_key < 0
        self.f_key[missing] = len(uniques) + np.arange(int(missing.sum()))
        self.key_names = np.concatenate([np.asarray(uniques, dtype=object),
                                         np.full(int(missing.sum()), None, dtype=object)])
        self.n_keys = len(self.key_names)
        self.pub_of_key = np.full(self.n_keys, -1, dtype="int64")
        self.pub_of_key[pub_codes] = np.arange(n_pub)

        self.c_sub, self.f_sub, sub_names = _factorize_both(self.run.conn["sub"].to_numpy(dtype=object), recv["sub"])
        self.sub_names = np.asarray(sub_names, dtype=object)

    # -- connections ---------------------------------------------------------------

    def _connections(self) -> None:
        conn = self.run.conn
        event = _text(conn["event"])
        frame = pd.DataFrame({
            "sub": self.c_sub, "ts": conn["ts"].to_numpy(dtype="float64"), "event": event,
            "conn": conn["conn"].to_numpy(dtype="float64", na_value=np.nan),
            "instance": self._codes_of(conn["instance"]), "user": _text(conn["user"]),
        })
        frame = frame[frame["sub"] >= 0]
        is_connect = frame["event"] == "connect"
        self.has_connections = bool(is_connect.any())
        if frame["conn"].isna().any():
            # Without connection numbers, a disconnect closes the latest connect.
            frame = frame.sort_values(["sub", "ts"], kind="stable")
            frame["conn"] = is_connect.loc[frame.index].astype("int64").groupby(frame["sub"]).cumsum()
            is_connect = frame["event"] == "connect"
        opens = frame[is_connect].drop_duplicates(["sub", "conn"])[["sub", "conn", "ts", "instance", "user"]]
        closes = (frame[frame["event"] == "disconnect"].groupby(["sub", "conn"], as_index=False)["ts"].min()
                  .rename(columns={"ts": "end"}))
        conns = opens.rename(columns={"ts": "start"}).merge(closes, on=["sub", "conn"], how="left")
        conns["end"] = conns["end"].fillna(np.inf)
        self.conns = conns.sort_values("start", kind="stable").reset_index(drop=True)
        per_sub = conns.groupby("sub").agg(first_connect=("start", "min"), last_end=("end", "max"),
                                           user=("user", "first"))
        self.sub_table = per_sub.reset_index()
        n_subs = len(self.sub_names)
        detail = _text(conn["detail"])
        shaped_rows = (event == "connect") & np.array([isinstance(d, str) and d.startswith(SHAPE_PREFIX) for d in detail],
                                                      dtype=bool) if len(conn) else np.zeros(0, dtype=bool)
        self.shaped_mask = np.zeros(n_subs, dtype=bool)
        self.shaped_slack = np.zeros(n_subs)
        self.shaped: dict[str, str] = {}
        for code, text in zip(self.c_sub[shaped_rows], detail[shaped_rows]):
            if code >= 0:
                name, slack = parse_shape(text)
                self.shaped_mask[code] = True
                self.shaped_slack[code] = slack
                self.shaped[str(self.sub_names[code])] = name
        self.sub_user = np.full(n_subs, None, dtype=object)
        self.sub_user[self.sub_table["sub"].to_numpy()] = self.sub_table["user"].to_numpy(dtype=object)

    # -- received frames -----------------------------------------------------------

    def _frames(self) -> None:
        recv = self.recv
        ts = recv["ts"].to_numpy(dtype="float64")
        # One int64 (subscriber, key) code sorts like the two columns, in one key fewer.
        order = np.lexsort((ts, self.f_sub.astype("int64") * self.n_keys + self.f_key))
        self.order = order
        sub, key = self.f_sub[order], self.f_key[order]
        replay = recv["replay"].to_numpy(dtype=bool)[order]
        conn = recv["conn"].to_numpy(dtype="float64", na_value=-1.0)[order]
        new_pair = np.ones(len(order), dtype=bool)
        new_pair[1:] = (sub[1:] != sub[:-1]) | (key[1:] != key[:-1])
        # The same key replayed twice on one connection is a duplicate, not overlap.
        replay_repeat = np.zeros(len(order), dtype=bool)
        if replay.any():
            rp = pd.DataFrame({"sub": sub[replay], "conn": conn[replay], "key": key[replay]})
            replay_repeat[np.flatnonzero(replay)] = rp.duplicated().to_numpy()
        self.f = pd.DataFrame({
            "ts": ts[order], "sub": sub, "key": key, "replay": replay, "conn": conn,
            "first": new_pair,
        })
        self.f_pub = self.pub_of_key[key]
        matched = self.f_pub >= 0
        frame_user = _text(recv["user"])[order]
        frame_user = np.where(_none(frame_user), self.sub_user[sub] if len(sub) else frame_user, frame_user)
        pub_idx = np.where(matched, self.f_pub, 0)
        is_user_pub = matched & (self.p_kind[pub_idx] == "user") if len(self.pub) else matched
        self.misrouted_mask = (is_user_pub & (frame_user != self.p_user[pub_idx]) & new_pair
                               if len(self.pub) else np.zeros(len(order), dtype=bool))
        self.dup_mask = ~new_pair & (~replay | replay_repeat)
        self.overlap_mask = ~new_pair & replay & ~replay_repeat
        self.unexpected_mask = ~matched
        intact = recv["intact"].to_numpy(dtype="float64", na_value=np.nan)[order]
        self.corrupted_mask = intact == 0
        self.intact_checked = int((~np.isnan(intact)).sum())
        self.matched = matched
        # Frames are sorted by (sub, key), so pair codes are sorted: the sets of pairs
        # seen are sorted unique arrays without a hash pass (np.unique is slow here).
        self.pair_code = sub.astype("int64") * self.n_keys + key
        self.seen_any = self.pair_code[new_pair]
        self.seen_live = _sorted_unique(self.pair_code[~replay])
        self.pub_seen = np.zeros(len(self.pub), dtype=bool)
        self.pub_seen[self.f_pub[self.f_pub >= 0]] = True
        self.f_instance = self._codes_of(recv["instance"])[order]
        origin = self._codes_of(recv["origin"])[order]
        # A frame without its origin takes the replica that acknowledged the publish.
        self.f_origin = (np.where((origin == 0) & matched, self.p_instance[pub_idx], origin)
                         if len(self.pub) else origin)
        sent = recv["sent_ts"].to_numpy(dtype="float64")[order]
        self.f_sent = np.where(np.isnan(sent) & matched, self.p_sent[pub_idx] if len(self.pub) else sent, sent)
        fid = recv["id"].to_numpy(dtype="float64", na_value=np.nan)[order]
        self.f_id = np.where(np.isnan(fid) & matched, self.p_id[pub_idx] if len(self.pub) else fid, fid)

    # -- who was owed what ---------------------------------------------------------

    def _expected_pairs(self) -> None:
        ok = np.flatnonzero((self.p_outcome == "ok") & ~np.isnan(self.p_sent))
        subs = self.sub_table[["sub", "user"]]
        user_pubs = pd.DataFrame({"pub": ok[self.p_kind[ok] == "user"]})
        user_pubs["user"] = self.p_user[user_pubs["pub"].to_numpy()]
        parts = [user_pubs.merge(subs, on="user", how="inner")[["pub", "sub"]]]
        broadcasts = pd.DataFrame({"pub": ok[self.p_kind[ok] == "broadcast"]})
        if len(broadcasts) and len(subs):
            parts.append(broadcasts.merge(subs[["sub"]], how="cross"))
        pairs = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"pub": [], "sub": []})
        pub_idx = pairs["pub"].to_numpy(dtype="int64")
        sub_idx = pairs["sub"].to_numpy(dtype="int64")
        sent, ack = self.p_sent[pub_idx], self.p_ack[pub_idx]
        first = np.full(len(self.sub_names), np.inf)
        last = np.full(len(self.sub_names), -np.inf)
        first[self.sub_table["sub"].to_numpy()] = self.sub_table["first_connect"].to_numpy()
        last[self.sub_table["sub"].to_numpy()] = self.sub_table["last_end"].to_numpy()
        # A shaped subscriber may hold frames unread for its slack (a stalled reader
        # when the load stops): what was sent that close to its end is not owed.
        eventual = (first[sub_idx] <= sent) & (last[sub_idx] >= ack + self.o.grace_s + self.shaped_slack[sub_idx])
        order = np.argsort(sent[eventual], kind="stable")  # merge_asof wants time order
        pairs = pd.DataFrame({"pub": pub_idx[eventual][order], "sub": sub_idx[eventual][order],
                              "ts_sent": sent[eventual][order], "deadline": ack[eventual][order] + self.o.grace_s})
        conns = self.conns[["sub", "start", "end", "instance"]].rename(columns={"instance": "conn_instance"})
        pairs = pd.merge_asof(pairs, conns, left_on="ts_sent", right_on="start", by="sub",
                              direction="backward", allow_exact_matches=True)
        end = pairs["end"].to_numpy(dtype="float64")
        live = ~np.isnan(end) & (end >= pairs["deadline"].to_numpy())
        live &= ~self.shaped_mask[pairs["sub"].to_numpy(dtype="int64")]  # shaped: owed eventually only
        connected = ~np.isnan(end) & (end > pairs["ts_sent"].to_numpy())
        sub_instance = np.where(connected, pairs["conn_instance"].to_numpy(dtype="float64", na_value=0),
                                self.vocab_index[OFFLINE]).astype("int16")
        pub_idx = pairs["pub"].to_numpy(dtype="int64")
        sub_idx = pairs["sub"].to_numpy(dtype="int64")
        key = self.pub_key_code(pub_idx)
        code = sub_idx * self.n_keys + key
        delivered_any, delivered_live = _in_sorted_many(code, self.seen_any, self.seen_live)
        origin = self.p_instance[pub_idx]
        # Owed eventually only if the subscriber was still there after every fault that
        # held the publish had healed (an unhealed fault never gave it the chance).
        heal = self._heal_needed()[pub_idx] + self.o.grace_s
        left_early = last[sub_idx] < heal
        unjudged = left_early & ~delivered_any
        self.pairs = pd.DataFrame({
            "ts_sent": pairs["ts_sent"].to_numpy(), "pub": pub_idx, "sub": sub_idx,
            "phase": self._phases(pub_idx), "fault": self.p_fault[pub_idx],
            "origin": self._categorical(origin), "sub_instance": self._categorical(sub_instance),
            "live": live, "delivered_live": delivered_live, "delivered": delivered_any,
            "lost_live": live & ~delivered_live, "lost_eventual": ~delivered_any & ~unjudged,
            "unjudged": unjudged,
        })

    def _heal_needed(self) -> np.ndarray:
        """Per publish: the latest heal of a fault whose window holds its send time
        (-inf outside faults, +inf when that fault never healed)."""
        needed = np.full(len(self.pub), -np.inf)
        for fault in self.faults:
            end = fault.end if fault.end is not None else np.inf
            inside = (self.p_sent >= fault.start) & (self.p_sent <= fault.end_or(self.run_end))
            needed[inside] = np.maximum(needed[inside], end)
        return needed

    def pub_key_code(self, pub_idx: np.ndarray) -> np.ndarray:
        if not hasattr(self, "_key_of_pub"):
            self._key_of_pub = np.full(len(self.pub), -1, dtype="int64")
            has = self.pub_of_key >= 0
            self._key_of_pub[self.pub_of_key[has]] = np.flatnonzero(has)
        return self._key_of_pub[pub_idx]

    # -- latency, lateness, order --------------------------------------------------

    def _latency(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        f = self.f
        use = f["first"].to_numpy() & ~f["replay"].to_numpy() & self.matched & ~self.misrouted_mask
        # Shaped subscribers are slow on purpose: their latency is not the app's, and
        # judging it would hide what matters (the others'); kept apart for isolation.
        shaped = self.shaped_mask[f["sub"].to_numpy()] if len(f) else np.zeros(0, dtype=bool)
        lag = f["ts"].to_numpy() - self.f_sent
        self.shaped_latency_ms = lag[use & shaped] * 1000.0
        use &= ~shaped
        idx = np.flatnonzero(use)
        pub_idx = self.f_pub[idx]
        ts = f["ts"].to_numpy()[idx]
        instance, origin = self.f_instance[idx], self.f_origin[idx]
        known = (instance != 0) & (origin != 0)
        # Path as codes into _PATHS: building a categorical from strings costs more than the rest.
        path = np.where(known, np.where(instance == origin, 0, 1), 2).astype("int8")
        latency = pd.DataFrame({
            "ts": ts, "sent_ts": self.f_sent[idx], "latency_ms": (ts - self.f_sent[idx]) * 1000.0,
            "sub": f["sub"].to_numpy()[idx], "key": f["key"].to_numpy()[idx], "id": self.f_id[idx],
            "instance": self._categorical(instance), "origin": self._categorical(origin),
            "path": pd.Categorical.from_codes(path, categories=list(_PATHS)),
            "phase": self._phases(pub_idx),
            "kind": pd.Categorical.from_codes(self.p_kind_code[pub_idx], categories=self.p_kind_names),
        })
        latency["late"] = latency["latency_ms"] > self.o.late_after_s * 1000.0
        self.order_analysis = self._order(idx, pub_idx, ts, instance, origin, path)
        by_time = np.argsort(latency["ts"].to_numpy(), kind="stable")
        return latency.iloc[by_time].reset_index(drop=True), self.order_analysis.realtime_violations

    def _order(self, idx: np.ndarray, pub_idx: np.ndarray, ts: np.ndarray, instance: np.ndarray,
               origin: np.ndarray, path: np.ndarray) -> order.OrderAnalysis:
        """Real-time, per-publisher and id order of the live first deliveries."""
        ack = self.pub["ts_ack"].to_numpy(dtype="float64")
        ack_ok = np.where(self.p_outcome == "ok", ack, np.nan)
        publisher, seq, _ = order.parse_keys(self.pub["key"].to_numpy(dtype=object))
        recv_phase, _ = phase_of(ts, self.faults, self.run_end, self.o.heal_window_s)
        deliveries = order.Deliveries(
            sub=self.f["sub"].to_numpy()[idx], conn=self.f["conn"].to_numpy()[idx], ts=ts, row=self.order[idx],
            sent=self.f_sent[idx], ack=ack_ok[pub_idx], key=self.f["key"].to_numpy()[idx],
            publisher=publisher[pub_idx], seq=seq[pub_idx], id=self.f_id[idx], origin=origin, instance=instance,
            path=path, sent_phase=self.p_phase_code[pub_idx],
            recv_phase=np.asarray(recv_phase.codes),
        )
        return order.analyze(deliveries, sub_names=self.sub_names, key_names=self.key_names, vocab=self.vocab,
                             path_names=_PATHS, has_acks=bool((~np.isnan(ack_ok)).any()))

    # -- tables --------------------------------------------------------------------

    def _counts(self, latency: pd.DataFrame, ooo: pd.DataFrame) -> DeliveryCounts:
        p, f = self.pairs, self.f
        outcome_seen = self.p_outcome[self.pub_seen]
        dup_pairs = _sorted_unique(self.pair_code[self.dup_mask])
        unexpected_keys = np.unique(f["key"].to_numpy()[self.unexpected_mask])
        return DeliveryCounts(
            publishes=len(self.pub), acknowledged=int((self.p_outcome == "ok").sum()),
            failed=int((self.p_outcome == "fail").sum()), unknown=int((self.p_outcome == "unknown").sum()),
            frames=len(f), subscribers=len(self.sub_table),
            expected_live=int(p["live"].sum()), delivered_live=int((p["live"] & p["delivered_live"]).sum()),
            lost_live=int(p["lost_live"].sum()), expected_eventual=len(p) - int(p["unjudged"].sum()),
            delivered_eventual=int(p["delivered"].sum()), lost_eventual=int(p["lost_eventual"].sum()),
            unjudged=int(p["unjudged"].sum()),
            duplicated=len(dup_pairs), duplicate_frames=int(self.dup_mask.sum()),
            resume_overlap_frames=int(self.overlap_mask.sum()),
            unexpected=len(unexpected_keys), unexpected_frames=int(self.unexpected_mask.sum()),
            recovered=int((outcome_seen == "unknown").sum()), failed_seen=int((outcome_seen == "fail").sum()),
            misrouted=int(self.misrouted_mask.sum()), corrupted=int(self.corrupted_mask.sum()),
            intact_checked=self.intact_checked, late=int(latency["late"].sum()), out_of_order=len(ooo),
            out_of_sequence=self.order_analysis.summaries[order.SEQUENCE].violations,
            out_of_id_order=self.order_analysis.summaries[order.IDS].violations,
        )

    def _by_phase(self, latency: pd.DataFrame) -> pd.DataFrame:
        p = self.pairs
        table = p.groupby("phase", observed=False).agg(
            expected_live=("live", "sum"), lost_live=("lost_live", "sum"),
            expected_eventual=("live", "size"), lost_eventual=("lost_eventual", "sum"),
        )
        dup_phase, _ = phase_of(self.f["ts"].to_numpy()[self.dup_mask], self.faults, self.run_end,
                                self.o.heal_window_s)
        table["duplicated"] = pd.Series(dup_phase).value_counts().reindex(table.index, fill_value=0)
        lat = latency.groupby("phase", observed=False)["latency_ms"]
        table["late"] = latency.groupby("phase", observed=False)["late"].sum()
        table["latency_p99_ms"] = lat.quantile(0.99)
        table = table.reindex(list(PHASES))
        for col in ("expected_live", "lost_live", "expected_eventual", "lost_eventual", "duplicated", "late"):
            table[col] = table[col].fillna(0).astype("int64")
        table.index.name = "phase"
        return table

    def _matrix(self) -> pd.DataFrame:
        p = self.pairs
        if not len(p):
            return pd.DataFrame(columns=["origin", "sub_instance", "phase", "expected_live", "delivered_live",
                                         "lost_live", "expected_eventual", "lost_eventual"])
        m = p.assign(delivered_live_live=p["live"] & p["delivered_live"]).groupby(
            ["origin", "sub_instance", "phase"], observed=True).agg(
            expected_live=("live", "sum"), delivered_live=("delivered_live_live", "sum"),
            lost_live=("lost_live", "sum"), expected_eventual=("live", "size"),
            lost_eventual=("lost_eventual", "sum"),
        )
        return m.reset_index()

    def _lost_table(self) -> pd.DataFrame:
        p = self.pairs
        lost = p[p["lost_live"] | p["lost_eventual"]]
        return pd.DataFrame({
            "ts_sent": lost["ts_sent"].to_numpy(),
            "key": self.key_names[self.pub_key_code(lost["pub"].to_numpy(dtype="int64"))],
            "sub": self.sub_names[lost["sub"].to_numpy(dtype="int64")],
            "origin": lost["origin"].to_numpy(), "sub_instance": lost["sub_instance"].to_numpy(),
            "phase": lost["phase"].to_numpy(), "fault": lost["fault"].to_numpy(),
            "live": lost["lost_live"].to_numpy(), "eventual": lost["lost_eventual"].to_numpy(),
        })

    def _recovered_table(self) -> pd.DataFrame:
        idx = np.flatnonzero(self.pub_seen & (self.p_outcome == "unknown"))
        return pd.DataFrame({
            "ts_sent": self.p_sent[idx], "key": self.pub["key"].to_numpy(dtype=object)[idx],
            "kind": self.p_kind[idx],
            "phase": self._phases(idx),
        })

    def _frame_table(self, mask: np.ndarray) -> pd.DataFrame:
        idx = np.flatnonzero(mask)
        f = self.f
        return pd.DataFrame({
            "ts": f["ts"].to_numpy()[idx], "sub": self.sub_names[f["sub"].to_numpy()[idx]],
            "key": self.key_names[f["key"].to_numpy()[idx]], "replay": f["replay"].to_numpy()[idx],
            "instance": np.asarray(self.vocab, dtype=object)[self.f_instance[idx]],
        })

    def _named(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        out["sub"] = self.sub_names[frame["sub"].to_numpy(dtype="int64")]
        out["key"] = self.key_names[frame["key"].to_numpy(dtype="int64")]
        return out.reset_index(drop=True)

    # -- recovery ------------------------------------------------------------------

    def _recovery(self, latency: pd.DataFrame) -> list[FaultRecovery]:
        cross = CROSS if bool((latency["path"] == CROSS).any()) else None
        # The load's last send bounds what the run could show after a heal.
        sent = self.p_sent[~np.isnan(self.p_sent)]
        load_end = min(self.run_end, float(sent.max())) if len(sent) else self.run_end
        starts = [f.start for f in self.faults]
        return [recovery.recover(fault, pairs=self.pairs, latency=latency, options=self.o, run_end=load_end,
                                 replicas=set(self.run.instances), cross=cross, later_starts=starts)
                for fault in self.run.faults]


def _factorize_both(head: np.ndarray, tail: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pd.factorize of `head` followed by `tail` (codes by first appearance, -1 for
    missing), as (head codes, tail codes, uniques). A categorical tail is factorized
    through its categories: each distinct value is hashed once, not once per row, in
    the order of its first row, so the codes are the same as from the plain concatenation."""
    if not isinstance(tail.dtype, pd.CategoricalDtype):
        codes, uniques = pd.factorize(np.concatenate([head, tail.to_numpy(dtype=object)]), use_na_sentinel=True)
        return codes[: len(head)].astype("int64"), codes[len(head):].astype("int64"), np.asarray(uniques, dtype=object)
    tail_codes = tail.cat.codes.to_numpy()
    present = tail_codes >= 0
    seen, first_seen = pd.factorize(tail_codes[present])  # categories in order of their first row
    categories = tail.cat.categories.to_numpy(dtype=object)[first_seen]
    codes, uniques = pd.factorize(np.concatenate([head, categories]), use_na_sentinel=True)
    out = np.full(len(tail_codes), -1, dtype="int64")
    out[present] = codes[len(head):][seen]
    return codes[: len(head)].astype("int64"), out, np.asarray(uniques, dtype=object)


def _categories(series: pd.Series) -> list:
    if isinstance(series.dtype, pd.CategoricalDtype):
        return list(series.cat.categories)
    return list(series.dropna().unique())


def _text(series: pd.Series) -> np.ndarray:
    """Values as a numpy object array with None for missing (categoricals compare freely)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        categories = np.append(series.cat.categories.to_numpy(dtype=object), None)
        return categories[series.cat.codes.to_numpy()]  # code -1 (missing) picks the None
    return series.to_numpy(dtype=object, na_value=None)


def _none(values: np.ndarray) -> np.ndarray:
    """Missing entries of a `_text` array (they are exactly None)."""
    return np.equal(values, None)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """Unique values of an already sorted array."""
    if not len(values):
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def _in_sorted(values: np.ndarray, sorted_unique: np.ndarray) -> np.ndarray:
    """np.isin for a sorted unique haystack, by binary search."""
    if not len(sorted_unique):
        return np.zeros(len(values), dtype=bool)
    idx = np.searchsorted(sorted_unique, values)
    idx[idx == len(sorted_unique)] = 0
    return sorted_unique[idx] == values


def _in_sorted_many(values: np.ndarray, *haystacks: np.ndarray) -> list[np.ndarray]:
    """_in_sorted against several haystacks, looking the values up in sorted order:
    a binary search over sorted needles stays in cache, over random ones it does not."""
    if len(values) < 2:
        return [_in_sorted(values, h) for h in haystacks]
    by_value = np.argsort(values, kind="stable")
    ordered = values[by_value]
    out = []
    for haystack in haystacks:
        found = np.empty(len(values), dtype=bool)
        found[by_value] = _in_sorted(ordered, haystack)
        out.append(found)
    return out


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for index, row in frame.reset_index().iterrows():
        out.append({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    return out
