"""Synthetic run directories with a known truth, for the checker's tests and the bench.

`build_run(path, SyntheticSpec(...))` writes a run directory in the real layout
(run.json, faults.jsonl, records/<worker>/*.csv) from a seeded model of the system:
subscribers spread over replicas, publishes with ok / fail / unknown outcomes,
subscribers that join late, leave, or drop and resume, faults that partition a
replica from the broker (cross-instance frames to and from it are dropped) or kill it
(its sockets reconnect elsewhere and resume). On top of a clean history it injects
each anomaly an exact number of times, and returns the counts the checker must find
(`SyntheticTruth`).

The model is vectorised with numpy so that a million-record run builds in seconds;
only per-subscriber connection timelines are built in Python.
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reports.records import CONN_COLUMNS, HTTP_COLUMNS, PUB_COLUMNS, RECV_COLUMNS, USERS_COLUMNS

START = 1_763_900_000.0


@dataclass(frozen=True)
class SyntheticFault:
    kind: str                 # "partition": cross-instance frames to/from target dropped; "kill": sockets move
    target: str
    at: float                 # seconds after run start
    duration: float
    slow_factor: float = 3.0  # delivery and publish latency multiplier inside the window
    recovery_s: float = 5.0   # after heal, deliveries involving the target stay slow this long
    recovery_factor: float = 6.0
    outcome: str = "ok"       # journal outcome: ok | heal_failed | inject_failed | active


@dataclass(frozen=True)
class SyntheticSpec:
    seed: int = 7
    name: str = "synthetic"
    duration: float = 120.0
    instances: tuple[str, ...] = ("r1", "r2", "r3")
    subscribers: int = 30
    users: int = 15
    workers: int = 2
    publish_rate: float = 20.0
    broadcast_fraction: float = 0.1
    fail_fraction: float = 0.03
    unknown_fraction: float = 0.03
    unknown_delivered_fraction: float = 0.5
    item_rate: float = 10.0
    latency_ms: tuple[float, float] = (5.0, 40.0)
    cross_extra_ms: float = 15.0
    late_joiners: int = 2
    leavers: int = 2
    flappers: int = 4
    overlap_replays: int = 3
    faults: tuple[SyntheticFault, ...] = ()
    # exact injections
    lost: int = 0
    lost_live_only: int = 0
    lost_eventual_only: int = 0
    duplicated: int = 0
    replay_duplicated: int = 0
    unexpected: int = 0
    late: int = 0
    out_of_order: int = 0
    misrouted: int = 0
    failed_seen: int = 0
    connect_failures: int = 0
    hostile: int = 20            # hostile attempts, every one refused ...
    hostile_accepted: int = 0    # ... but these
    # the checker options this truth assumes
    grace_s: float = 1.0
    late_after_s: float = 1.0
    heal_window_s: float = 30.0
    truncate_last_line: bool = False
    with_truth: bool = True


@dataclass
class SyntheticTruth:
    publishes: int = 0
    acknowledged: int = 0
    failed: int = 0
    unknown: int = 0
    lost_live: int = 0
    lost_eventual: int = 0
    duplicated: int = 0
    unexpected: int = 0
    recovered: int = 0
    late: int = 0
    out_of_order: int = 0        # real-time order, counted over the final frames
    out_of_sequence: int = 0
    out_of_id_order: int = 0
    misrouted: int = 0
    failed_seen: int = 0
    connect_failed: int = 0
    connect_attempts: int = 0
    lost_live_by_phase: dict[str, int] = field(default_factory=dict)
    lost_eventual_by_phase: dict[str, int] = field(default_factory=dict)
    lost_live_by_pair: dict[tuple[str, str], int] = field(default_factory=dict)
    records: dict[str, int] = field(default_factory=dict)


@dataclass
class SyntheticRun:
    run_dir: Path
    spec: SyntheticSpec
    truth: SyntheticTruth


def default_faults(duration: float = 120.0) -> tuple[SyntheticFault, ...]:
    """A partition of r2 at 25% of the run and a kill of r3 at 60%."""
    return (SyntheticFault("partition", "r2", 0.25 * duration, 0.08 * duration),
            SyntheticFault("kill", "r3", 0.6 * duration, 0.06 * duration))


def build_run(path: str | Path, spec: SyntheticSpec | None = None) -> SyntheticRun:
    spec = spec or SyntheticSpec(faults=default_faults())
    return _Builder(Path(path), spec).build()


@dataclass
class _Conn:
    sub: int
    number: int
    start: float
    end: float          # inf: open to the end of the run
    instance: str
    close_code: int = 1000
    resumed: bool = False


class _Builder:
    def __init__(self, root: Path, spec: SyntheticSpec) -> None:
        self.root, self.s = root, spec
        self.rng = np.random.default_rng(spec.seed)
        self.truth = SyntheticTruth()
        self.inst = list(spec.instances)

    # -- the model -----------------------------------------------------------------

    def build(self) -> SyntheticRun:
        self._subscribers()
        self._publishes()
        self._deliveries()
        self._fault_drops()
        self._inject()
        self._truth_totals()
        self._write()
        return SyntheticRun(self.root, self.s, self.truth)

    def _killed(self, instance: str, t: float) -> bool:
        return any(f.kind == "kill" and f.target == instance and f.at <= t <= f.at + f.duration
                   for f in self.s.faults if f.outcome != "inject_failed")

    def _subscribers(self) -> None:
        s, rng = self.s, self.rng
        n = s.subscribers
        self.sub_names = np.array([f"s{i:04d}" for i in range(n)], dtype=object)
        self.sub_user = np.array([f"u{i % s.users:03d}" for i in range(n)], dtype=object)
        self.sub_worker = np.array([f"w{i % s.workers}" for i in range(n)], dtype=object)
        roles = rng.permutation(n)
        late = set(roles[: s.late_joiners].tolist())
        leave = set(roles[s.late_joiners: s.late_joiners + s.leavers].tolist())
        flap = set(roles[s.late_joiners + s.leavers: s.late_joiners + s.leavers + s.flappers].tolist())
        kills = [f for f in s.faults if f.kind == "kill" and f.outcome != "inject_failed"]
        conns: list[_Conn] = []
        self.conn_fail_events: list[tuple[float, int]] = []
        for i in range(n):
            t = rng.uniform(0.3, 0.5) * s.duration if i in late else rng.uniform(0.0, 1.0)
            inst = self.inst[i % len(self.inst)]
            if self._killed(inst, t):
                inst = next(x for x in self.inst if not self._killed(x, t))
            events: list[tuple[float, str, float]] = []  # (time, what, reconnect after)
            if i in flap:
                events.append((rng.uniform(0.15, 0.85) * s.duration, "flap", rng.uniform(2.0, 6.0)))
            if i in leave:
                events.append((rng.uniform(0.5, 0.9) * s.duration, "leave", math.inf))
            for f in kills:
                events.append((f.at, f"kill:{f.target}", f.duration * 0.3 + rng.uniform(0.5, 2.0)))
            events.sort()
            number, start, open_ = 1, t, True
            for at, what, after in events:
                if at <= start or not open_:
                    continue
                if what.startswith("kill:") and inst != what[5:]:
                    continue
                end = at + (rng.uniform(0.0, 0.2) if what.startswith("kill") else 0.0)
                conns.append(_Conn(i, number, start, end, inst, 1006 if what != "leave" else 1000))
                if what == "leave":
                    open_ = False
                    break
                start = end + after
                choices = [x for x in self.inst if not self._killed(x, start) and x != inst] or self.inst
                inst = choices[int(rng.integers(len(choices)))]
                number += 1
                conns[-1].resumed = True  # the next connection resumes
            if open_:
                conns.append(_Conn(i, number, start, math.inf, inst))
        self.conns = conns
        # Connection arrays sorted by (sub, start) for vectorised lookups.
        self.c_sub = np.array([c.sub for c in conns])
        self.c_start = np.array([c.start for c in conns])
        self.c_end = np.array([c.end for c in conns])
        self.c_inst = np.array([c.instance for c in conns], dtype=object)
        self.c_num = np.array([c.number for c in conns])
        order = np.lexsort((self.c_start, self.c_sub))
        self.c_sub, self.c_start, self.c_end = self.c_sub[order], self.c_start[order], self.c_end[order]
        self.c_inst, self.c_num = self.c_inst[order], self.c_num[order]
        self.conns = [conns[i] for i in order]
        self.first_connect = np.array([self.c_start[self.c_sub == i].min() for i in range(n)])
        self.last_end = np.array([self.c_end[self.c_sub == i].max() for i in range(n)])

    def _conn_at(self, sub: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Index of the subscriber's last connection started at or before t (-1: none)."""
        big = 10.0 * (self.s.duration + 1000.0)
        keys = self.c_sub * big + self.c_start
        idx = np.searchsorted(keys, sub * big + t, side="right") - 1
        valid = (idx >= 0) & (self.c_sub[np.maximum(idx, 0)] == sub)
        return np.where(valid, idx, -1)

    def _next_conn(self, sub: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Index of the subscriber's first connection started after t (-1: none)."""
        big = 10.0 * (self.s.duration + 1000.0)
        keys = self.c_sub * big + self.c_start
        idx = np.searchsorted(keys, sub * big + t, side="right")
        valid = (idx < len(keys)) & (self.c_sub[np.minimum(idx, len(keys) - 1)] == sub)
        return np.where(valid, idx, -1)

    def _in_fault(self, t: np.ndarray) -> np.ndarray:
        out = np.zeros(len(t), dtype=bool)
        for f in self.s.faults:
            if f.outcome != "inject_failed":
                out |= (t >= f.at) & (t <= f.at + f.duration)
        return out

    def _publishes(self) -> None:
        s, rng = self.s, self.rng
        n = int(s.publish_rate * (s.duration - 2.5))
        t_int = np.sort(rng.uniform(1.5, s.duration - 1.0, n))
        slow = np.where(self._in_fault(t_int), 3.0, 1.0)
        # Behind a slow request the next ones wait: what coordinated omission hides.
        backlog = rng.exponential(0.002, n) * slow * np.where(slow > 1, 20.0, 1.0)
        sent = t_int + backlog
        dur = rng.lognormal(math.log(0.02), 0.4, n) * slow
        kind = np.where(rng.random(n) < s.broadcast_fraction, "broadcast", "user").astype(object)
        user = np.array([f"u{u:03d}" for u in rng.integers(0, s.users, n)], dtype=object)
        user[kind == "broadcast"] = None
        r = rng.random(n)
        outcome = np.where(r < s.fail_fraction, "fail",
                           np.where(r < s.fail_fraction + s.unknown_fraction, "unknown", "ok")).astype(object)
        inst = np.array([self._pick_instance(t) for t in sent], dtype=object)
        worker = rng.integers(0, s.workers, n)
        seq = np.arange(n)
        self.p = pd.DataFrame({
            "key": [f"w{w}-{q}" for w, q in zip(worker, seq)], "worker": [f"w{w}" for w in worker],
            "kind": kind, "user": user, "ts_intended": t_int, "ts_sent": sent, "dur": dur,
            "outcome": outcome, "instance": inst,
        })
        stored = outcome != "fail"
        ids = np.full(n, np.nan)
        by_sent = np.argsort(sent, kind="stable")
        ids[by_sent[stored[by_sent]]] = np.arange(1, int(stored.sum()) + 1)  # commit order = send order
        self.p["id"] = ids
        self.p["ts_ack"] = np.where(outcome == "unknown", np.nan, sent + dur)
        # Where an unknown publish got to, the server knows even if the client does not.
        self.p["delivered"] = (outcome == "ok") | ((outcome == "unknown") & (rng.random(n) < s.unknown_delivered_fraction))
        self.p["server_ack"] = sent + dur

    def _pick_instance(self, t: float) -> str:
        choices = [x for x in self.inst if not self._killed(x, t)] or self.inst
        return choices[int(self.rng.integers(len(choices)))]

    def _deliveries(self) -> None:
        s, rng = self.s, self.rng
        p = self.p
        deliverable = np.flatnonzero(p["delivered"].to_numpy())
        kind = p["kind"].to_numpy()
        by_user: dict[str, np.ndarray] = {}
        for i, u in enumerate(self.sub_user):
            by_user.setdefault(u, []).append(i)  # type: ignore[union-attr]
        by_user = {u: np.array(v) for u, v in by_user.items()}
        all_subs = np.arange(s.subscribers)
        pub_parts, sub_parts = [], []
        users = p["user"].to_numpy()
        bcast = deliverable[kind[deliverable] == "broadcast"]
        pub_parts.append(np.repeat(bcast, len(all_subs)))
        sub_parts.append(np.tile(all_subs, len(bcast)))
        user_pubs = deliverable[kind[deliverable] == "user"]
        for u, members in by_user.items():
            these = user_pubs[users[user_pubs] == u]
            pub_parts.append(np.repeat(these, len(members)))
            sub_parts.append(np.tile(members, len(these)))
        pub = np.concatenate(pub_parts).astype("int64")
        sub = np.concatenate(sub_parts).astype("int64")
        sent = p["ts_sent"].to_numpy()[pub]
        ack = p["server_ack"].to_numpy()[pub]
        eventual = (self.first_connect[sub] <= sent) & (self.last_end[sub] >= ack + s.grace_s)
        pub, sub, sent, ack = pub[eventual], sub[eventual], sent[eventual], ack[eventual]
        c = self._conn_at(sub, sent)
        open_at = (c >= 0) & (self.c_end[np.maximum(c, 0)] > sent)
        live_expected = (c >= 0) & (self.c_end[np.maximum(c, 0)] >= ack + s.grace_s)
        origin = p["instance"].to_numpy()[pub]
        sub_inst = np.where(open_at, self.c_inst[np.maximum(c, 0)], None)
        lo, hi = s.latency_ms
        lat = rng.uniform(lo, hi, len(pub)) / 1000.0
        lat += np.where(origin != sub_inst, s.cross_extra_ms / 1000.0, 0.0)
        lat *= np.where(self._in_fault(sent), 3.0, 1.0)
        for f in s.faults:
            if f.outcome in ("inject_failed",):
                continue
            heal = f.at + f.duration
            slow = (sent >= heal) & (sent < heal + f.recovery_s) & ((sub_inst == f.target) | (origin == f.target))
            lat = np.where(slow, lat * f.recovery_factor, lat)
        arrive = sent + lat
        live = open_at & (self.c_end[np.maximum(c, 0)] > arrive)
        # What is not delivered live comes by replay on the next connection.
        nxt = self._next_conn(sub, sent)
        replay = ~live
        if (replay & (nxt < 0)).any():
            raise AssertionError("synthetic model: an owed message has no connection to arrive on")
        conn_idx = np.where(live, c, nxt)
        ts = np.where(live, arrive, self.c_start[np.maximum(nxt, 0)] + 0.05)
        frames = pd.DataFrame({
            "pub": pub, "sub": sub, "conn": conn_idx, "ts": ts, "replay": replay,
            "live_expected": live_expected, "sent": sent,
        })
        # Per subscriber, live frames arrive in id order (the reference SUT's fan-out
        # keeps order); reassigning arrival times by rank keeps every latency positive.
        fl = frames[~frames["replay"]]
        ids = p["id"].to_numpy()[fl["pub"].to_numpy()]
        subs_l = fl["sub"].to_numpy()
        by_ts = np.lexsort((fl["ts"].to_numpy(), subs_l))
        by_id = np.lexsort((ids, subs_l))
        new_ts = np.empty(len(fl))
        new_ts[by_id] = fl["ts"].to_numpy()[by_ts]
        frames.loc[fl.index, "ts"] = new_ts
        # Replays of one reconnect come in id order too.
        rp = frames[frames["replay"]]
        rank = rp.assign(id=p["id"].to_numpy()[rp["pub"].to_numpy()]).groupby("conn")["id"].rank(method="first")
        frames.loc[rp.index, "ts"] = rp["ts"] + rank.to_numpy() * 0.0005
        self.frames = frames.reset_index(drop=True)
        self.frames["kind"] = "clean"

    def _fault_drops(self) -> None:
        f = self.frames
        p = self.p
        origin = p["instance"].to_numpy()[f["pub"].to_numpy()]
        inst = self.c_inst[f["conn"].to_numpy()]
        drop = np.zeros(len(f), dtype=bool)
        for fault in self.s.faults:
            if fault.kind != "partition" or fault.outcome == "inject_failed":
                continue
            end = fault.at + fault.duration
            inside = (f["sent"].to_numpy() >= fault.at) & (f["sent"].to_numpy() <= end)
            cross = (origin == fault.target) != (inst == fault.target)
            drop |= inside & cross & ~f["replay"].to_numpy()
        self._count_lost(f[drop])
        self.frames = f[~drop].reset_index(drop=True)

    def _count_lost(self, lost: pd.DataFrame, live_only: bool = False, eventual_only: bool = False) -> None:
        """Book lost pairs (acknowledged publishes only) into the truth."""
        ok = self.p["outcome"].to_numpy()[lost["pub"].to_numpy()] == "ok"
        lost = lost[ok]
        t = self.truth
        phases = self._phase(lost["sent"].to_numpy())
        for i, (live_exp, phase) in enumerate(zip(lost["live_expected"].to_numpy(), phases)):
            if live_exp and not eventual_only:
                t.lost_live += 1
                t.lost_live_by_phase[phase] = t.lost_live_by_phase.get(phase, 0) + 1
                row = lost.iloc[i]
                pair = (self.p["instance"].iat[int(row["pub"])],
                        self._sub_instance_at(int(row["sub"]), float(row["sent"])))
                t.lost_live_by_pair[pair] = t.lost_live_by_pair.get(pair, 0) + 1
            if not live_only:
                t.lost_eventual += 1
                t.lost_eventual_by_phase[phase] = t.lost_eventual_by_phase.get(phase, 0) + 1

    def _sub_instance_at(self, sub: int, t: float) -> str:
        c = int(self._conn_at(np.array([sub]), np.array([t]))[0])
        return str(self.c_inst[c]) if c >= 0 and self.c_end[c] > t else "offline"

    def _phase(self, t: np.ndarray) -> list[str]:
        """Independent phase oracle: fault windows win over heal windows."""
        out = []
        for x in t:
            phase = "steady"
            for f in self.s.faults:
                if f.outcome == "inject_failed":
                    continue
                heal = f.at + f.duration
                if f.at <= x <= heal:
                    phase = "fault"
                    break
                if heal < x <= heal + self.s.heal_window_s and f.outcome != "active":
                    phase = "after_heal"
            out.append(phase)
        return out

    # -- injections ----------------------------------------------------------------

    def _pick(self, candidates: np.ndarray, k: int, what: str) -> np.ndarray:
        if k == 0:
            return np.array([], dtype="int64")
        if len(candidates) < k:
            raise ValueError(f"synthetic model: only {len(candidates)} candidates to inject {k} {what}")
        return np.sort(self.rng.choice(candidates, k, replace=False))

    def _inject(self) -> None:
        s, p = self.s, self.p
        f = self.frames
        used = np.zeros(len(f), dtype=bool)
        ok = p["outcome"].to_numpy()[f["pub"].to_numpy()] == "ok"
        live = ~f["replay"].to_numpy()
        steady = ~self._in_fault(f["sent"].to_numpy())
        drop = np.zeros(len(f), dtype=bool)

        # Lost for good: an owed live frame that never came.
        victims = self._pick(np.flatnonzero(live & ok & f["live_expected"].to_numpy() & steady), s.lost, "lost")
        used[victims] = drop[victims] = True
        self._count_lost(f.iloc[victims])

        # Lost live only: the live frame never came, the next resume brought it.
        nxt = self._next_conn(f["sub"].to_numpy(), f["sent"].to_numpy())
        cand = np.flatnonzero(live & ok & f["live_expected"].to_numpy() & (nxt >= 0) & ~used & steady)
        victims = self._pick(cand, s.lost_live_only, "lost live only")
        used[victims] = True
        f.loc[victims, "replay"] = True
        f.loc[victims, "conn"] = nxt[victims]
        f.loc[victims, "ts"] = self.c_start[nxt[victims]] + 0.04
        self._count_lost(f.iloc[victims], live_only=True)

        # Lost eventually only: owed by resume, never replayed.
        cand = np.flatnonzero(~live & ok & ~f["live_expected"].to_numpy() & ~used)
        victims = self._pick(cand, s.lost_eventual_only, "lost eventually only")
        used[victims] = drop[victims] = True
        self._count_lost(f.iloc[victims], eventual_only=True)

        live = ~f["replay"].to_numpy()
        unknown_or_ok = p["outcome"].to_numpy()[f["pub"].to_numpy()] != "fail"
        extra: list[pd.DataFrame] = []

        # Late: each chosen subscriber's last live frame comes well after the threshold.
        # Being the last, it overtakes nothing, so it adds no out-of-order frame.
        open_end = np.isinf(self.c_end[f["conn"].to_numpy()])
        kept = live & ~drop
        last_live = f[kept].groupby("sub")["ts"].idxmax().to_numpy()
        cand = last_live[~used[last_live] & open_end[last_live] & unknown_or_ok[last_live]]
        victims = self._pick(cand, s.late, "late")
        used[victims] = True
        f.loc[victims, "ts"] = f.loc[victims, "ts"] + s.late_after_s + 0.5
        late_subs = set(f.loc[victims, "sub"].tolist())

        # Out of order: a live frame moved just after the next one of its subscriber.
        kept_live = f[live & ~drop].sort_values(["sub", "ts"])
        nxt_same = kept_live["sub"].shift(-1) == kept_live["sub"]
        gap = kept_live["ts"].shift(-1) - kept_live["ts"]
        nxt_conn = kept_live["conn"].shift(-1) == kept_live["conn"]
        lat_now = (kept_live["ts"] - kept_live["sent"]) * 1000.0
        nxt_index = pd.Series(kept_live.index, index=kept_live.index).shift(-1)
        ok_pair = (nxt_same & nxt_conn & (gap < 0.4) & (gap > 0.002)
                   & (lat_now + gap * 1000 + 10 < s.late_after_s * 1000)
                   & ~kept_live["sub"].isin(late_subs))
        cand_rows = kept_live.index[ok_pair.to_numpy()].to_numpy()
        nxt_rows = nxt_index[ok_pair].to_numpy().astype("int64")
        # The moved frame's publish was acknowledged before the next one was sent, so
        # the swap breaks real-time order (and the id order), not just a race.
        acked = p["ts_ack"].to_numpy()[f["pub"].to_numpy()]
        before_next = (p["outcome"].to_numpy()[f["pub"].to_numpy()[cand_rows]] == "ok") & (
            f["sent"].to_numpy()[nxt_rows] > acked[cand_rows] + 0.001)
        good = (~used[cand_rows] & ~used[nxt_rows] & unknown_or_ok[cand_rows] & unknown_or_ok[nxt_rows]
                & before_next)
        cand_rows, nxt_rows = cand_rows[good], nxt_rows[good]
        # One swap per subscriber keeps each an isolated inversion.
        _, first_per_sub = np.unique(f["sub"].to_numpy()[cand_rows], return_index=True)
        pick = self._pick(np.arange(len(first_per_sub)), s.out_of_order, "out of order")
        for j in pick:
            a, b = cand_rows[first_per_sub[j]], nxt_rows[first_per_sub[j]]
            used[a] = used[b] = True
            f.loc[a, "ts"] = f.loc[b, "ts"] + 0.001

        # Resume overlap: each reconnect replays a few keys the subscriber already had.
        for ci, conn in enumerate(self.conns):
            if not conn.resumed or s.overlap_replays <= 0:
                continue
            nxt_c = np.flatnonzero((self.c_sub == conn.sub) & (self.c_start > conn.start))
            if not len(nxt_c):
                continue
            had = f[(f["sub"] == conn.sub) & (f["conn"] == ci) & ~f["replay"] & ~pd.Series(drop, index=f.index)]
            had = had.sort_values("ts").tail(s.overlap_replays)
            if len(had):
                extra.append(had.assign(conn=nxt_c[0], replay=True,
                                        ts=self.c_start[nxt_c[0]] + 0.03, kind="overlap"))

        # Duplicates: a live frame delivered twice; a replay repeated on one connection.
        cand = np.flatnonzero(live & ~used & ~drop)
        victims = self._pick(cand, s.duplicated, "duplicated")
        used[victims] = True
        extra.append(f.iloc[victims].assign(ts=f["ts"].to_numpy()[victims] + 0.03, kind="dup"))
        cand = np.flatnonzero(~live & ~used & ~drop)
        victims = self._pick(cand, s.replay_duplicated, "replay duplicated")
        used[victims] = True
        extra.append(f.iloc[victims].assign(ts=f["ts"].to_numpy()[victims] + 0.001, kind="dup"))
        self.truth.duplicated = s.duplicated + s.replay_duplicated

        # Misrouted: a user message reaching a subscriber of another user.
        user_ok = np.flatnonzero((p["kind"].to_numpy() == "user") & (p["outcome"].to_numpy() == "ok"))
        rows = []
        for pi in self._pick(user_ok, s.misrouted, "misrouted"):
            wrong = np.flatnonzero((self.sub_user != p["user"].iat[pi]))
            sub = int(self.rng.choice(wrong))
            rows.append(self._extra_frame(pi, sub, "misrouted"))
        # Failed publishes that were delivered anyway.
        fails = np.flatnonzero((p["kind"].to_numpy() == "user") & (p["outcome"].to_numpy() == "fail"))
        for pi in self._pick(fails, s.failed_seen, "failed seen"):
            members = np.flatnonzero(self.sub_user == p["user"].iat[pi])
            rows.append(self._extra_frame(pi, int(self.rng.choice(members)), "failed_seen"))
        rows = [r for r in rows if r is not None]
        if rows:
            extra.append(pd.DataFrame(rows))
        self.truth.misrouted = s.misrouted
        self.truth.failed_seen = s.failed_seen
        self.truth.late = s.late

        frames = pd.concat([f[~drop]] + [e for e in extra if len(e)], ignore_index=True)
        self.frames = frames
        self.unexpected_frames = self._unexpected(s.unexpected)
        self.truth.unexpected = s.unexpected

    def _extra_frame(self, pi: int, sub: int, kind: str) -> dict | None:
        sent = float(self.p["ts_sent"].iat[pi])
        c = int(self._conn_at(np.array([sub]), np.array([sent + 0.03]))[0])
        if c < 0 or self.c_end[c] <= sent + 0.03:
            # Not connected then: deliver on the next connection instead.
            c = int(self._next_conn(np.array([sub]), np.array([sent]))[0])
            if c < 0:
                raise ValueError(f"synthetic model: subscriber {sub} has no connection for a {kind} frame")
            return {"pub": pi, "sub": sub, "conn": c, "ts": self.c_start[c] + 0.06, "replay": False,
                    "live_expected": False, "sent": sent, "kind": kind}
        return {"pub": pi, "sub": sub, "conn": c, "ts": sent + 0.03, "replay": False,
                "live_expected": False, "sent": sent, "kind": kind}

    def _unexpected(self, k: int) -> pd.DataFrame:
        rng = self.rng
        rows = []
        for j in range(k):
            sub = int(rng.integers(self.s.subscribers))
            c = int(np.flatnonzero(self.c_sub == sub)[-1])
            ts = self.c_start[c] + 0.5 + j * 0.01
            rows.append({"ts": ts, "sub": sub, "conn": c, "key": f"ghost-{j}", "id": 10_000_000 + j,
                         "sent_ts": ts - 0.02})
        return pd.DataFrame(rows, columns=["ts", "sub", "conn", "key", "id", "sent_ts"])

    def _order_truth(self) -> None:
        """Order violations over the frames as written: the injected swaps, and whatever
        else (a failed publish seen anyway) overtook a message acknowledged before it
        was sent. Counted with pandas group-wise running maxima, independently of the
        checker's single running maximum."""
        f, p = self.frames, self.p
        # As the checker sees them: the first frame of each (subscriber, message), if live.
        first = f.sort_values("ts", kind="stable").drop_duplicates(["sub", "pub"], keep="first")
        live = first[~first["replay"].to_numpy() & (first["kind"] != "misrouted").to_numpy()]
        pi = live["pub"].to_numpy()
        t = pd.DataFrame({
            "stream": live["sub"].to_numpy() * 1_000_000 + live["conn"].to_numpy(), "ts": live["ts"].to_numpy(),
            "sent": np.round(p["ts_sent"].to_numpy()[pi], 6),
            "ack": np.where(p["outcome"].to_numpy()[pi] == "ok", np.round(p["ts_ack"].to_numpy()[pi], 6), np.inf),
            "seq": pi, "worker": p["worker"].to_numpy()[pi],  # keys are w<worker>-<publish index>
            "id": p["id"].to_numpy()[pi],
        }).sort_values(["stream", "ts"], kind="stable")

        def earlier_max(column: str, by: list[str]) -> pd.Series:
            return t.groupby(by)[column].cummax().groupby([t[b] for b in by]).shift(1)

        self.truth.out_of_order = int((earlier_max("sent", ["stream"]) > t["ack"]).sum())
        self.truth.out_of_sequence = int((earlier_max("seq", ["stream", "worker"]) > t["seq"]).sum())
        self.truth.out_of_id_order = int((earlier_max("id", ["stream"]) > t["id"]).sum())

    def _truth_totals(self) -> None:
        self._order_truth()
        p, t = self.p, self.truth
        outcome = p["outcome"].to_numpy()
        t.publishes = len(p)
        t.acknowledged = int((outcome == "ok").sum())
        t.failed = int((outcome == "fail").sum())
        t.unknown = int((outcome == "unknown").sum())
        seen = np.unique(self.frames["pub"].to_numpy())
        t.recovered = int((outcome[seen] == "unknown").sum())

    # -- writing -------------------------------------------------------------------

    def _write(self) -> None:
        s, p, rng = self.s, self.p, self.rng
        root = self.root
        (root / "records").mkdir(parents=True, exist_ok=True)
        (root / "logs").mkdir(exist_ok=True)
        workers = [f"w{i}" for i in range(s.workers)]
        tables: dict[str, list[pd.DataFrame]] = {k: [] for k in ("http", "pub", "recv", "conn", "users")}

        # pub.csv
        outcome = p["outcome"].to_numpy()
        pub = pd.DataFrame({
            "key": p["key"], "kind": p["kind"], "user": p["user"],
            "ts_intended": START + p["ts_intended"], "ts_sent": START + p["ts_sent"],
            "ts_ack": START + p["ts_ack"], "outcome": outcome,
            "status": pd.array(np.where(outcome == "ok", 201, np.where(outcome == "fail", 503, -1)), dtype="Int64"),
            "id": pd.array(np.where(outcome == "ok", p["id"].fillna(-1), -1).astype("int64"), dtype="Int64"),
            "instance": np.where(outcome == "ok", p["instance"], np.where(outcome == "fail", p["instance"], None)),
            "error": np.where(outcome == "fail", "HTTP 503", np.where(outcome == "unknown", "timeout", None)),
            "worker": p["worker"],
        })
        pub.loc[pub["status"] == -1, "status"] = pd.NA
        pub.loc[pub["id"] == -1, "id"] = pd.NA
        tables["pub"].append(pub)

        # http.csv: the publish requests plus background item reads.
        ack_ms = p["dur"].to_numpy() * 1000.0
        http_pub = pd.DataFrame({
            "ts": START + p["ts_sent"],
            "name": np.where(p["kind"] == "broadcast", "POST /api/broadcast", "POST /api/notifications"),
            "method": "POST", "status": pub["status"],
            "dur_ms": np.where(outcome == "unknown", 5000.0, ack_ms),
            "ok": (outcome == "ok").astype(int), "instance": pub["instance"],
            "error": pub["error"], "worker": p["worker"],
        })
        n_items = int(s.item_rate * s.duration)
        t_items = np.sort(rng.uniform(0.5, s.duration - 0.5, n_items))
        # The load balancer sends a share of requests to a killed replica until it notices.
        item_inst = np.array([self.inst[int(i)] for i in rng.integers(0, len(self.inst), n_items)], dtype=object)
        dead = np.array([self._killed(x, t) for x, t in zip(item_inst, t_items)]) & (rng.random(n_items) < 0.3)
        in_fault = self._in_fault(t_items)
        failed = dead | (rng.random(n_items) < 0.002)
        http_items = pd.DataFrame({
            "ts": START + t_items, "name": "GET /api/items/{id}", "method": "GET",
            "status": pd.array(np.where(failed, 502, 200), dtype="Int64"),
            "dur_ms": rng.lognormal(math.log(8.0), 0.5, n_items) * np.where(in_fault, 4.0, 1.0),
            "ok": (~failed).astype(int), "instance": np.where(failed, None, item_inst),
            "error": np.where(failed, "HTTP 502", None),
            "worker": np.array(workers, dtype=object)[rng.integers(0, s.workers, n_items)],
        })
        tables["http"] += [http_pub, http_items]

        # recv.csv
        fr = self.frames
        pi = fr["pub"].to_numpy()
        recv = pd.DataFrame({
            "ts": START + fr["ts"].to_numpy(), "sub": self.sub_names[fr["sub"].to_numpy()],
            "user": self.sub_user[fr["sub"].to_numpy()], "conn": self.c_num[fr["conn"].to_numpy()],
            "instance": self.c_inst[fr["conn"].to_numpy()], "key": p["key"].to_numpy()[pi],
            "id": pd.array(p["id"].to_numpy()[pi], dtype="Int64"), "origin": p["instance"].to_numpy()[pi],
            "sent_ts": START + p["ts_sent"].to_numpy()[pi], "replay": fr["replay"].to_numpy().astype(int),
            "worker": self.sub_worker[fr["sub"].to_numpy()],
        })
        u = self.unexpected_frames
        if len(u):
            ghost = pd.DataFrame({
                "ts": START + u["ts"].to_numpy(), "sub": self.sub_names[u["sub"].to_numpy(dtype=int)],
                "user": self.sub_user[u["sub"].to_numpy(dtype=int)], "conn": self.c_num[u["conn"].to_numpy(dtype=int)],
                "instance": self.c_inst[u["conn"].to_numpy(dtype=int)], "key": u["key"].to_numpy(),
                "id": u["id"].to_numpy(dtype="int64"), "origin": self.inst[0],
                "sent_ts": START + u["sent_ts"].to_numpy(), "replay": 0,
                "worker": self.sub_worker[u["sub"].to_numpy(dtype=int)],
            })
            recv = pd.concat([recv, ghost], ignore_index=True)
        tables["recv"].append(recv.sort_values("ts", kind="stable"))

        # conn.csv
        rows = []
        for c in self.conns:
            w, sub, user = self.sub_worker[c.sub], self.sub_names[c.sub], self.sub_user[c.sub]
            rows.append((c.start, sub, user, c.number, "connect", c.instance, None, "", w))
            if c.number > 1:
                rows.append((c.start + 0.01, sub, user, c.number, "resume", c.instance, None, "after", w))
            if math.isfinite(c.end):
                # A subscriber that leaves (1000) is a user the load generator stopped, as the recorder says.
                detail = "stopped by load generator" if c.close_code == 1000 else ""
                rows.append((c.end, sub, user, c.number, "disconnect", c.instance, c.close_code, detail, w))
        for j in range(s.connect_failures):
            c = self.conns[int(rng.integers(len(self.conns)))]
            rows.append((c.start - 0.2 - 0.01 * j, self.sub_names[c.sub], self.sub_user[c.sub], None,
                         "connect_fail", c.instance, 1006, "refused", self.sub_worker[c.sub]))
        conn = pd.DataFrame(rows, columns=list(CONN_COLUMNS) + ["worker"])
        conn["ts"] = START + conn["ts"].clip(lower=0.0)
        conn["conn"] = pd.array(conn["conn"], dtype="Int64")
        conn["code"] = pd.array(conn["code"], dtype="Int64")
        tables["conn"].append(conn.sort_values("ts", kind="stable"))
        self.truth.connect_failed = s.connect_failures
        self.truth.connect_attempts = len(self.conns) + s.connect_failures

        # users.csv: each worker samples its users and open sockets every second.
        grid = np.arange(0.0, s.duration, 1.0)
        for w in workers:
            mine = np.array([self.sub_worker[c.sub] == w for c in self.conns])
            starts, ends = self.c_start[mine], self.c_end[mine]
            sockets = ((starts[None, :] <= grid[:, None]) & (ends[None, :] > grid[:, None])).sum(axis=1)
            n_users = int((self.sub_worker == w).sum()) + 2
            tables["users"].append(pd.DataFrame({"ts": START + grid + 0.1 * int(w[1:]), "users": n_users,
                                                 "sockets": sockets, "worker": w}))

        columns = {"http": HTTP_COLUMNS, "pub": PUB_COLUMNS, "recv": RECV_COLUMNS, "conn": CONN_COLUMNS,
                   "users": USERS_COLUMNS}
        for kind, parts in tables.items():
            table = pd.concat(parts, ignore_index=True)
            self.truth.records[kind] = len(table)
            for w in workers:
                d = root / "records" / w
                d.mkdir(parents=True, exist_ok=True)
                part = table[table["worker"] == w]
                if kind != "users":
                    part = part.sort_values(columns[kind][0] if kind != "pub" else "ts_sent", kind="stable")
                part.reindex(columns=list(columns[kind])).to_csv(d / f"{kind}.csv", index=False, float_format="%.6f",
                                                 lineterminator="\n")
        if s.truncate_last_line:
            path = root / "records" / workers[0] / "recv.csv"
            data = path.read_bytes()
            last = data.rstrip(b"\n").rfind(b"\n")
            cut = last + 1 + (len(data) - last) // 2
            path.write_bytes(data[:cut])

        # hostile.csv: attempts with broken credentials, refused unless told otherwise.
        if s.hostile or s.hostile_accepted:
            n = s.hostile + s.hostile_accepted
            accepted = np.arange(n) < s.hostile_accepted
            hostile = pd.DataFrame({
                "ts": START + np.linspace(1.0, max(1.0, s.duration - 1.0), n),
                "kind": np.where(np.arange(n) % 2 == 0, "read-forged", "ws-truncated"),
                "transport": np.where(np.arange(n) % 2 == 0, "http", "ws"),
                "request": np.where(np.arange(n) % 2 == 0, "GET /api/notifications", "WS /ws"),
                "user": [f"u{i % max(1, s.users)}" for i in range(n)],
                "status": np.where(accepted, 200, 401), "outcome": np.where(accepted, "accepted", "refused"),
                "detail": "synthetic",
            })
            d = root / "records" / workers[0]
            d.mkdir(parents=True, exist_ok=True)
            hostile.to_csv(d / "hostile.csv", index=False, float_format="%.6f", lineterminator="\n")

        # faults.jsonl: the inject line, then the heal line with the same id.
        lines = []
        for i, f in enumerate(s.faults, start=1):
            base = {"id": f"f{i}", "kind": f.kind, "target": f.target,
                    "params": {"dependency": "redis"} if f.kind == "partition" else {},
                    "start": START + f.at, "end": None, "outcome": "active", "error": None}
            lines.append(base)
            if f.outcome != "active":
                healed = dict(base, end=START + f.at + f.duration, outcome=f.outcome,
                              error=None if f.outcome == "ok" else f"{f.outcome.replace('_', ' ')}: synthetic")
                lines.append(healed)
        (root / "faults.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))

        meta = {
            "name": s.name, "seed": s.seed, "argv": ["gauntlet", "run", "synthetic"],
            "versions": {"python": platform.python_version(), "gauntlet": "0.1.0", "pandas": pd.__version__},
            "stack": {"replicas": len(self.inst), "instances": self.inst, "broker": "redis",
                      "lb_strategy": "round_robin", "backend": "synthetic"},
            "scenario": {"name": "synthetic", "subscribers": s.subscribers, "users": s.users,
                         "publish_rate": s.publish_rate},
            "timeline": [asdict(f) for f in s.faults],
            "start": START, "end": START + s.duration,
        }
        (root / "run.json").write_text(json.dumps(meta, indent=2))


def spec_for_records(target: int, seed: int = 11, faults: Sequence[SyntheticFault] | None = None) -> SyntheticSpec:
    """A spec whose run has about `target` records in all (for the bench)."""
    duration = 300.0
    subscribers, users, bf = 400, 200, 0.02
    # recv per publish ≈ (1 - bf) * subs/users + bf * subs; plus one http and one pub record.
    per_pub = (1 - bf) * subscribers / users + bf * subscribers + 2.0
    rate = target * 1.075 / per_pub / duration  # eventual filtering trims ~5 % of the pairs
    return SyntheticSpec(
        seed=seed, name=f"bench-{target}", duration=duration, subscribers=subscribers, users=users,
        workers=4, publish_rate=rate, broadcast_fraction=bf, item_rate=rate * 0.3, late_joiners=10,
        leavers=10, flappers=20, faults=tuple(faults) if faults is not None else default_faults(duration),
        lost=50, lost_live_only=20, lost_eventual_only=10, duplicated=30, replay_duplicated=5, unexpected=10,
        late=10, out_of_order=10, misrouted=3, connect_failures=20,
    )
