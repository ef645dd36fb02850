"""The metrics latency targets are written against, each a table of raw samples.

A metric is a function from a run to a DataFrame with a `value` column, a `ts` column
(epoch seconds) and one column per tag. Thresholds filter it by tags and aggregate the
raw values, so a percentile is always computed from every sample, never from buckets.

Kinds, as in k6:
- trend   (milliseconds): p(N), avg, min, max, med, count
- rate    (fraction of samples that are true): rate, count (true samples; unknown
  when there is no sample, since nothing was judged)
- counter (events): count, rate (events per second of run)
- gauge   (a level sampled over time: cores, MB, connections): p(N), avg, min, max, med, count
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from reports import delivery, order
from reports.delivery import CROSS, OFFLINE, SAME, UNKNOWN_PATH, DeliveryOptions
from reports.phases import PHASES, run_phase_of
from reports.records import RunData

TREND, RATE, COUNTER, GAUGE = "trend", "rate", "counter", "gauge"
AGGREGATIONS: dict[str, tuple[str, ...]] = {
    TREND: ("p", "avg", "min", "max", "med", "count"),
    GAUGE: ("p", "avg", "min", "max", "med", "count"),
    RATE: ("rate", "count"),
    COUNTER: ("count", "rate"),
}
PATHS = (SAME, CROSS, UNKNOWN_PATH, OFFLINE)

Sampler = Callable[[RunData, DeliveryOptions], pd.DataFrame]


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str
    description: str
    tags: tuple[str, ...]
    sampler: Sampler = field(repr=False)
    # Tags whose values are a closed set; a typo there is an error, not an empty match.
    tag_values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # What a check on it judges, in the check's summary (e.g. which order).
    judges: str = ""

    @property
    def unit(self) -> str:
        return "ms" if self.kind == TREND else ""


def samples(run: RunData, name: str, options: DeliveryOptions | None = None) -> pd.DataFrame:
    """The metric's sample table for this run (computed once)."""
    options = options or DeliveryOptions()
    key = ("metric", name, options)
    if key not in run.cache:
        run.cache[key] = METRICS[name].sampler(run, options)
    return run.cache[key]


# -- samplers ----------------------------------------------------------------------

def _with_phase(run: RunData, frame: pd.DataFrame, options: DeliveryOptions, ts: str = "ts") -> pd.DataFrame:
    phase, _ = run_phase_of(run, frame[ts].to_numpy(), options.heal_window_s)
    frame["phase"] = phase
    return frame


def _http(value: str) -> Sampler:
    def sampler(run: RunData, options: DeliveryOptions) -> pd.DataFrame:
        h = run.http
        if value == "dur_ms":
            v = h["dur_ms"].to_numpy(dtype="float64")
        elif value == "failed":
            v = ~h["ok"].to_numpy(dtype=bool)
        else:
            v = np.ones(len(h))
        frame = pd.DataFrame({"ts": h["ts"].to_numpy(dtype="float64"), "value": v, "name": h["name"],
                              "method": h["method"], "status": h["status"].astype("string"),
                              "instance": h["instance"]})
        if value == "dur_ms":
            frame = frame[frame["value"].notna()]
        return _with_phase(run, frame, options)
    return sampler


def _publish(value: str) -> Sampler:
    def sampler(run: RunData, options: DeliveryOptions) -> pd.DataFrame:
        p = run.pub
        sent = p["ts_sent"].to_numpy(dtype="float64")
        if value == "raw":
            v = (p["ts_ack"].to_numpy(dtype="float64") - sent) * 1000.0
        elif value == "corrected":
            # From the open-model schedule time: includes the time a request waited
            # behind slow ones, which the raw figure hides (coordinated omission).
            intended = p["ts_intended"].to_numpy(dtype="float64")
            v = (p["ts_ack"].to_numpy(dtype="float64") - np.where(np.isnan(intended), sent, intended)) * 1000.0
        else:
            v = (p["outcome"].astype(object) != "ok").to_numpy(dtype=bool)
        frame = pd.DataFrame({"ts": sent, "value": v, "kind": p["kind"], "outcome": p["outcome"],
                              "instance": p["instance"]})
        if value != "failed":
            frame = frame[frame["value"].notna()]
        return _with_phase(run, frame, options)
    return sampler


def _ws_connect_failed(run: RunData, options: DeliveryOptions) -> pd.DataFrame:
    c = run.conn
    event = c["event"].astype(object)
    attempts = c[event.isin(["connect", "connect_fail"]).to_numpy()]
    frame = pd.DataFrame({"ts": attempts["ts"].to_numpy(dtype="float64"),
                          "value": (attempts["event"].astype(object) == "connect_fail").to_numpy(dtype=bool),
                          "instance": attempts["instance"]})
    return _with_phase(run, frame, options)


def _ws_unconnected(run: RunData, options: DeliveryOptions) -> pd.DataFrame:
    from reports import subscribers

    return subscribers.samples(run, options.heal_window_s)


def _delivery_latency(run: RunData, options: DeliveryOptions) -> pd.DataFrame:
    lat = delivery.analyze(run, options).latency
    return pd.DataFrame({"ts": lat["ts"], "value": lat["latency_ms"], "path": lat["path"],
                         "instance": lat["instance"], "origin": lat["origin"], "phase": lat["phase"],
                         "kind": lat["kind"]})


def _pair_path(origin: pd.Series, instance: pd.Series) -> np.ndarray:
    o, i = origin.astype(object).to_numpy(), instance.astype(object).to_numpy()
    return np.where(i == OFFLINE, OFFLINE, np.where((o == "?") | (i == "?"), UNKNOWN_PATH,
                                                   np.where(o == i, SAME, CROSS)))


def _lost(which: str) -> Sampler:
    def sampler(run: RunData, options: DeliveryOptions) -> pd.DataFrame:
        lost = delivery.analyze(run, options).lost
        lost = lost[lost[which].to_numpy(dtype=bool)]
        return pd.DataFrame({"ts": lost["ts_sent"], "value": 1.0, "origin": lost["origin"],
                             "instance": lost["sub_instance"], "phase": lost["phase"],
                             "path": _pair_path(lost["origin"], lost["sub_instance"])})
    return sampler


def _missed(run: RunData, options: DeliveryOptions) -> pd.DataFrame:
    p = delivery.analyze(run, options).pairs
    p = p[p["live"].to_numpy()]
    return pd.DataFrame({"ts": p["ts_sent"], "value": p["lost_live"], "origin": p["origin"],
                         "instance": p["sub_instance"], "phase": p["phase"],
                         "path": _pair_path(p["origin"], p["sub_instance"])})


def _frames(table: str, unique: tuple[str, ...] = ()) -> Sampler:
    def sampler(run: RunData, options: DeliveryOptions) -> pd.DataFrame:
        t = getattr(delivery.analyze(run, options), table)
        if unique:
            t = t.drop_duplicates(list(unique))
        frame = pd.DataFrame({"ts": t["ts"].to_numpy(dtype="float64"), "value": 1.0,
                              "instance": t["instance"].to_numpy(dtype=object)})
        return _with_phase(run, frame, options)
    return sampler


def _recovered(run: RunData, options: DeliveryOptions) -> pd.DataFrame:
    t = delivery.analyze(run, options).recovered
    return pd.DataFrame({"ts": t["ts_sent"], "value": 1.0, "kind": t["kind"], "phase": t["phase"]})


def _latency_rows(column: str) -> Sampler:
    def sampler(run: RunData, options: DeliveryOptions) -> pd.DataFrame:
        lat = delivery.analyze(run, options).latency
        lat = lat[lat[column].to_numpy(dtype=bool)]
        return pd.DataFrame({"ts": lat["ts"], "value": 1.0, "path": lat["path"], "instance": lat["instance"],
                             "origin": lat["origin"], "phase": lat["phase"]})
    return sampler


def _order(which: str) -> Sampler:
    """One sample per live delivery the order could judge; true when it came late."""
    def sampler(run: RunData, options: DeliveryOptions) -> pd.DataFrame:
        s = delivery.analyze(run, options).order.samples
        judged = s[f"judged_{which}"].to_numpy()
        return pd.DataFrame({"ts": s["ts"].to_numpy()[judged], "value": s[f"late_{which}"].to_numpy()[judged],
                             "path": s["path"][judged], "instance": s["instance"][judged],
                             "origin": s["origin"][judged], "phase": s["phase"][judged]})
    return sampler


def _dependency_connections(dependency: str, per_replica: bool) -> Sampler:
    """Each replica's open connections to a dependency, per sample (or their sum over
    the replicas: what the dependency itself holds)."""
    def sampler(run: RunData, options: DeliveryOptions) -> pd.DataFrame:
        d = run.dep_conns
        d = d[(d["dependency"].astype(object) == dependency).to_numpy()]
        if per_replica:
            frame = pd.DataFrame({"ts": d["ts"].to_numpy(dtype="float64"),
                                  "value": d["connections"].to_numpy(dtype="float64"),
                                  "instance": d["replica"].astype(object).to_numpy()})
        else:
            total = d.groupby("ts")["connections"].sum()
            frame = pd.DataFrame({"ts": total.index.to_numpy(dtype="float64"),
                                  "value": total.to_numpy(dtype="float64")})
        return _with_phase(run, frame, options)
    return sampler


def _resource(column: str) -> Sampler:
    def sampler(run: RunData, options: DeliveryOptions) -> pd.DataFrame:
        r = run.resources
        r = r[np.isfinite(r[column].to_numpy(dtype="float64"))]
        frame = pd.DataFrame({"ts": r["ts"].to_numpy(dtype="float64"), "value": r[column].to_numpy(dtype="float64"),
                              "component": r["component"].astype(object).to_numpy(),
                              "kind": r["kind"].astype(object).to_numpy()})
        return _with_phase(run, frame, options)
    return sampler


_HTTP_TAGS = ("name", "method", "status", "instance", "phase")
_PUB_TAGS = ("kind", "outcome", "instance", "phase")
_PAIR_TAGS = ("origin", "instance", "path", "phase")
_PHASE = {"phase": PHASES}
_PATH_PHASE = {"phase": PHASES, "path": PATHS}

METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("http_req_duration", TREND, "HTTP request duration (ms), as measured by the load generator",
           _HTTP_TAGS, _http("dur_ms"), _PHASE),
    Metric("http_req_failed", RATE, "share of HTTP requests that failed (error or non-2xx)",
           _HTTP_TAGS, _http("failed"), _PHASE),
    Metric("http_reqs", COUNTER, "HTTP requests made", _HTTP_TAGS, _http("count"), _PHASE),
    Metric("publish_duration", TREND, "publish latency (ms): ts_sent -> ts_ack", _PUB_TAGS,
           _publish("raw"), _PHASE),
    Metric("publish_duration_corrected", TREND,
           "publish latency (ms) from the scheduled time ts_intended -> ts_ack (coordinated-omission corrected)",
           _PUB_TAGS, _publish("corrected"), _PHASE),
    Metric("publish_failed", RATE, "share of publishes whose outcome was not ok (fail or unknown)",
           _PUB_TAGS, _publish("failed"), _PHASE),
    Metric("ws_delivery_latency", TREND,
           "WebSocket delivery latency (ms), recv ts - sent_ts, of live first deliveries",
           ("path", "instance", "origin", "phase", "kind"), _delivery_latency, _PATH_PHASE),
    Metric("ws_connect_failed", RATE, "share of WebSocket connect attempts that failed",
           ("instance", "phase"), _ws_connect_failed, _PHASE),
    Metric("ws_subscribers_unconnected", COUNTER,
           "subscribers that could not connect or reconnect: without a connection for more than 10 s "
           "(one per subscriber and phase)", ("instance", "reason", "phase"), _ws_unconnected,
           {"phase": PHASES, "reason": ("connect", "reconnect")}, "subscribers without a connection"),
    Metric("delivery_lost", COUNTER, "live-expected deliveries of acknowledged publishes never received live",
           _PAIR_TAGS, _lost("live"), _PATH_PHASE),
    Metric("delivery_lost_eventual", COUNTER,
           "deliveries of acknowledged publishes never received at all (live or by resume)",
           _PAIR_TAGS, _lost("eventual"), _PATH_PHASE),
    Metric("delivery_missed", RATE, "share of live-expected deliveries not received live",
           _PAIR_TAGS, _missed, _PATH_PHASE),
    Metric("delivery_duplicated", COUNTER, "(subscriber, message) pairs delivered more than once",
           ("instance", "phase"), _frames("duplicates", ("sub", "key")), _PHASE),
    Metric("delivery_unexpected", COUNTER, "messages received that were never published",
           ("instance", "phase"), _frames("unexpected", ("key",)), _PHASE),
    Metric("delivery_misrouted", COUNTER, "user messages delivered to another user's subscriber",
           ("instance", "phase"), _frames("misrouted"), _PHASE),
    Metric("delivery_recovered", COUNTER, "publishes with unknown outcome that were delivered",
           ("kind", "phase"), _recovered, _PHASE),
    Metric("delivery_late", COUNTER, "live deliveries slower than the late threshold (--late-after)",
           ("path", "instance", "origin", "phase"), _latency_rows("late"), _PATH_PHASE),
    Metric("db_connections_per_replica", GAUGE,
           "open connections from one replica to Postgres, sampled each second (resource sampler)",
           ("instance", "phase"), _dependency_connections("postgres", True), _PHASE),
    Metric("redis_connections_per_replica", GAUGE,
           "open connections from one replica to Redis, sampled each second",
           ("instance", "phase"), _dependency_connections("redis", True), _PHASE),
    Metric("db_connections", GAUGE, "open connections to Postgres from all replicas together, per sample",
           ("phase",), _dependency_connections("postgres", False), _PHASE),
    Metric("redis_connections", GAUGE, "open connections to Redis from all replicas together, per sample",
           ("phase",), _dependency_connections("redis", False), _PHASE),
    Metric("component_cpu", GAUGE,
           "CPU of a component in cores (1 = one core busy), per sample; components: r1.., nginx, redis, "
           "postgres, faultproxy, load-w0.., harness, machine, other",
           ("component", "kind", "phase"), _resource("cpu"), _PHASE),
    Metric("component_rss_mb", GAUGE, "resident memory of a component in MB, per sample",
           ("component", "kind", "phase"), _resource("rss_mb"), _PHASE),
    Metric("delivery_out_of_order", RATE,
           "real-time order: share of live deliveries received after a message that was sent after they "
           "were acknowledged (count: how many)",
           ("path", "instance", "origin", "phase"), _order(order.REALTIME), _PATH_PHASE, "real-time order"),
    Metric("delivery_out_of_sequence", RATE,
           "per-publisher sequence (informational): share of live deliveries received after a later-sequenced "
           "message of the same publisher", ("path", "instance", "origin", "phase"), _order(order.SEQUENCE),
           _PATH_PHASE, "per-publisher sequence"),
    Metric("delivery_out_of_id_order", RATE,
           "server-id order (informational): share of live deliveries received after one with a higher id",
           ("path", "instance", "origin", "phase"), _order(order.IDS), _PATH_PHASE, "server-id order"),
)}
