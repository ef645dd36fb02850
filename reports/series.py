"""Time series of a run, bucketed for plots and the csv/ exports.

Each function takes DataFrames (not a run directory), so a comparison across runs can
call them on each run's tables. Times in the output are seconds since the run start
(`t`, the start of the bucket). Percentiles inside a bucket come from the raw samples
of that bucket.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from reports.records import FaultWindow

_NICE_BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)
QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class Percentiles:
    """The latency summary every table shows: how many samples, p50/p95/p99, max."""

    count: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: np.ndarray | Sequence[float]) -> Percentiles:
        """From every raw sample; NaN (no measurement) is left out."""
        v = np.asarray(values, dtype="float64")
        v = v[~np.isnan(v)]
        if not len(v):
            return cls()
        p50, p95, p99 = (float(x) for x in np.percentile(v, [50, 95, 99]))
        return cls(len(v), p50, p95, p99, float(v.max()))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bucket_seconds(duration: float, max_buckets: int = 300) -> float:
    """A round bucket width giving at most `max_buckets` buckets."""
    for width in _NICE_BUCKETS:
        if duration / width <= max_buckets:
            return float(width)
    return float(_NICE_BUCKETS[-1])


def _bucket(ts: pd.Series | np.ndarray, t0: float, width: float) -> np.ndarray:
    return np.floor((np.asarray(ts, dtype="float64") - t0) / width) * width


def latency_series(samples: pd.DataFrame, t0: float, width: float, group: str = "endpoint") -> pd.DataFrame:
    """p50/p95/p99 and count per bucket and group, from `ts`, `value` (ms) and `group` columns."""
    cols = ["t", group, "count", "p50", "p95", "p99"]
    if not len(samples):
        return pd.DataFrame(columns=cols)
    values = samples["value"].to_numpy(dtype="float64")
    keep = ~np.isnan(values)
    bucket = _bucket(samples["ts"], t0, width)[keep]
    group_codes, group_names = _sorted_codes(samples[group], keep)
    bucket_codes, bucket_values = pd.factorize(bucket, sort=True)
    keys = bucket_codes.astype("int64") * max(1, len(group_names)) + group_codes
    unique, counts, q = grouped_quantiles(keys, values[keep], QUANTILES)
    return pd.DataFrame({
        "t": bucket_values[unique // max(1, len(group_names))],
        group: np.asarray(group_names, dtype=object)[unique % max(1, len(group_names))],
        "count": counts, "p50": q[0], "p95": q[1], "p99": q[2],
    })[cols]


def _sorted_codes(column: pd.Series, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pd.factorize(column as text, sort=True) over the kept rows. A categorical
    without missing values is coded through its few categories instead of hashing
    every row's text."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()[keep]
        if len(codes) and codes.min() >= 0:
            names = np.asarray([str(c) for c in column.cat.categories], dtype=object)
            used = np.flatnonzero(np.bincount(codes, minlength=len(names)))
            ranked = used[np.argsort(names[used], kind="stable")]
            new_code = np.full(len(names), -1, dtype="int64")
            new_code[ranked] = np.arange(len(ranked))
            return new_code[codes], names[ranked]
    codes, names = pd.factorize(column.astype(str).to_numpy()[keep], sort=True)
    return codes, np.asarray(names, dtype=object)


def grouped_quantiles(keys: np.ndarray, values: np.ndarray,
                      quantiles: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantiles of `values` per integer key, from one sort of all samples.

    Linear interpolation between order statistics, as numpy.percentile does; much
    faster than a groupby quantile when there are many groups.
    """
    if not len(keys):
        return keys, np.array([], dtype="int64"), np.empty((len(quantiles), 0))
    order = np.lexsort((values, keys))
    k, v = keys[order], values[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    counts = np.diff(np.r_[starts, len(k)])
    out = np.empty((len(quantiles), len(starts)))
    for i, q in enumerate(quantiles):
        pos = starts + q * (counts - 1)
        lo = np.floor(pos).astype("int64")
        hi = np.minimum(lo + 1, starts + counts - 1)
        out[i] = v[lo] + (v[hi] - v[lo]) * (pos - lo)
    return k[starts], counts, out


def http_latency_samples(http: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"ts": http["ts"].to_numpy(dtype="float64"), "value": http["dur_ms"].to_numpy(dtype="float64"),
                         "endpoint": http["name"].astype(object).fillna("(unnamed)").to_numpy()}).dropna(subset=["value"])


def publish_latency_samples(pub: pd.DataFrame) -> pd.DataFrame:
    """Publish latency twice: raw (from ts_sent) and corrected (from ts_intended)."""
    sent = pub["ts_sent"].to_numpy(dtype="float64")
    ack = pub["ts_ack"].to_numpy(dtype="float64")
    intended = pub["ts_intended"].to_numpy(dtype="float64")
    intended = np.where(np.isnan(intended), sent, intended)
    raw = pd.DataFrame({"ts": sent, "value": (ack - sent) * 1000.0, "endpoint": "publish (raw)"})
    corrected = pd.DataFrame({"ts": intended, "value": (ack - intended) * 1000.0, "endpoint": "publish (corrected)"})
    return pd.concat([raw, corrected], ignore_index=True).dropna(subset=["value"])


def acknowledged(pub: pd.DataFrame) -> np.ndarray:
    """Which publishes the SUT acknowledged (outcome ok)."""
    return pub["outcome"].astype(object).to_numpy() == "ok"


def ok_publish_latency(pub: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Send time and latency (ms, ts_sent -> ts_ack) of the acknowledged publishes."""
    ok = acknowledged(pub)
    sent = pub["ts_sent"].to_numpy(dtype="float64")[ok]
    return sent, (pub["ts_ack"].to_numpy(dtype="float64")[ok] - sent) * 1000.0


def delivery_latency_samples(latency: pd.DataFrame) -> pd.DataFrame:
    path = latency["path"]
    # Named per category, not per row: a run has millions of deliveries and three paths.
    endpoint = (path.cat.rename_categories([f"ws delivery ({c})" for c in path.cat.categories])
                if isinstance(path.dtype, pd.CategoricalDtype) and not path.isna().any()
                else "ws delivery (" + path.astype(str) + ")")
    return pd.DataFrame({"ts": latency["ts"].to_numpy(dtype="float64"), "value": latency["latency_ms"].to_numpy(),
                         "endpoint": endpoint.to_numpy() if not isinstance(endpoint.dtype, pd.CategoricalDtype)
                         else endpoint.array})


def throughput_series(http: pd.DataFrame, pub: pd.DataFrame, t0: float, width: float) -> pd.DataFrame:
    """Requests/s and errors/s per endpoint, plus publishes by outcome."""
    cols = ["t", "endpoint", "per_s", "errors_per_s"]
    parts = []
    if len(http):
        h = pd.DataFrame({"t": _bucket(http["ts"], t0, width),
                          "endpoint": http["name"].astype(object).fillna("(unnamed)").to_numpy(),
                          "error": ~http["ok"].to_numpy(dtype=bool)})
        g = h.groupby(["t", "endpoint"]).agg(n=("error", "size"), e=("error", "sum")).reset_index()
        parts.append(g)
    if len(pub):
        outcome = pub["outcome"].astype(object).to_numpy()
        p = pd.DataFrame({"t": _bucket(pub["ts_sent"], t0, width), "endpoint": "publish",
                          "error": outcome != "ok"})
        parts.append(p.groupby(["t", "endpoint"]).agg(n=("error", "size"), e=("error", "sum")).reset_index())
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True)
    out["per_s"] = out["n"] / width
    out["errors_per_s"] = out["e"] / width
    return out[cols].sort_values(["t", "endpoint"]).reset_index(drop=True)


def users_series(users: pd.DataFrame, t0: float, width: float) -> pd.DataFrame:
    """Users and sockets summed over load processes (each reports its own)."""
    cols = ["t", "users", "sockets"]
    if not len(users):
        return pd.DataFrame(columns=cols)
    u = pd.DataFrame({"t": _bucket(users["ts"], t0, width),
                      "worker": users["worker"].astype(str).to_numpy() if "worker" in users else "w",
                      "users": users["users"].to_numpy(dtype="float64"),
                      "sockets": users["sockets"].to_numpy(dtype="float64")})
    last = u.groupby(["t", "worker"]).last()
    wide = last.unstack("worker").sort_index().ffill()
    return pd.DataFrame({"t": wide.index.to_numpy(), "users": wide["users"].sum(axis=1).to_numpy(),
                         "sockets": wide["sockets"].sum(axis=1).to_numpy()})[cols]


def sockets_per_instance(conn: pd.DataFrame, t0: float, width: float, t_end: float) -> pd.DataFrame:
    """Open sockets per replica at the end of each bucket, from connect/disconnect events."""
    cols = ["t", "instance", "sockets"]
    event = conn["event"].astype(object).to_numpy()
    use = (event == "connect") | (event == "disconnect")
    if not use.any():
        return pd.DataFrame(columns=cols)
    c = pd.DataFrame({"ts": conn["ts"].to_numpy(dtype="float64")[use],
                      "instance": conn["instance"].astype(object).fillna("?").to_numpy()[use],
                      "delta": np.where(event[use] == "connect", 1, -1)}).sort_values("ts", kind="stable")
    c["open"] = c.groupby("instance")["delta"].cumsum()
    c["t"] = _bucket(c["ts"], t0, width)
    last = c.groupby(["t", "instance"])["open"].last().unstack("instance")
    grid = np.arange(0.0, max(t_end - t0, 0.0) + width, width)
    wide = last.reindex(np.union1d(grid, last.index.to_numpy())).ffill().fillna(0)
    out = wide.stack().rename("sockets").reset_index()
    out.columns = cols
    return out


def rate_per_instance(ts: pd.Series, instance: pd.Series, t0: float, width: float, name: str) -> pd.DataFrame:
    """Events per second per replica (requests answered, frames delivered)."""
    cols = ["t", "instance", name]
    if not len(ts):
        return pd.DataFrame(columns=cols)
    f = pd.DataFrame({"t": _bucket(ts, t0, width), "instance": instance.astype(object).fillna("?").to_numpy()})
    out = f.groupby(["t", "instance"]).size().rename(name).reset_index()
    out[name] = out[name] / width
    return out[cols]


def delivery_series(pairs: pd.DataFrame, duplicates: pd.DataFrame, t0: float, width: float) -> pd.DataFrame:
    """Per bucket of publish time: owed live, lost live, lost for good; duplicates by arrival."""
    cols = ["t", "expected_live", "lost_live", "lost_eventual", "duplicated"]
    frames = []
    if len(pairs):
        p = pd.DataFrame({"t": _bucket(pairs["ts_sent"], t0, width), "expected_live": pairs["live"].to_numpy(),
                          "lost_live": pairs["lost_live"].to_numpy(), "lost_eventual": pairs["lost_eventual"].to_numpy()})
        frames.append(p.groupby("t")[["expected_live", "lost_live", "lost_eventual"]].sum())
    if len(duplicates):
        d = pd.Series(_bucket(duplicates["ts"], t0, width)).value_counts().rename("duplicated")
        frames.append(d.to_frame())
    if not frames:
        return pd.DataFrame(columns=cols)
    out = pd.concat(frames, axis=1).fillna(0).sort_index()
    for c in cols[1:]:
        if c not in out:
            out[c] = 0
    out.index.name = "t"
    return out.reset_index()[cols].astype({c: "int64" for c in cols[1:]})


def latency_cdf(values_by_label: dict[str, np.ndarray], points: int = 200) -> pd.DataFrame:
    """Quantile grid of each sample set: latency_ms at each cumulative fraction."""
    fractions = np.linspace(0.0, 1.0, points + 1)
    out = {"fraction": fractions}
    for label, values in values_by_label.items():
        v = np.asarray(values, dtype="float64")
        out[label] = np.quantile(v, fractions) if len(v) else np.full(len(fractions), np.nan)
    return pd.DataFrame(out)


def fault_spans(faults: Sequence[FaultWindow], t0: float, t_end: float) -> list[tuple[float, float, str, str]]:
    """(start, end, label, kind) in run seconds for shading; unhealed faults run to the end."""
    spans = []
    for f in faults:
        if not f.injected:
            continue
        spans.append((f.start - t0, f.end_or(t_end) - t0, f"{f.id} {f.label}", f.kind))
    return spans
