"""The raw load record schema (DESIGN contract 2) and the reader of a whole run directory.

The column lists live in common/records.py, the one definition the recorders that write
them (scenarios) and the checkers that read them (reports) share. See docs/architecture.md.

`load_run(run_dir)` turns a run directory into a `RunData`: one DataFrame per record
kind, concatenated over every `records/<worker>/` directory, the fault journal folded to
one `FaultWindow` per fault, and run.json as `RunMeta`. Runs end badly (a killed load
process, a full disk), so the reader tolerates what a dying writer leaves behind: an
empty file, a header without rows, a last line cut short. Anything else that does not
parse is a `RecordError` naming the file, the line and the column.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from common.records import (  # noqa: F401  (re-exported: the schema the readers share with the recorders)
    HTTP_COLUMNS, PUB_COLUMNS, RECV_COLUMNS, CONN_COLUMNS,
    USERS_COLUMNS, LOADGEN_COLUMNS, RESOURCE_COLUMNS, DEP_CONN_COLUMNS,
    RESOURCES_FILE, DEP_CONN_FILE, KINDS, RUN_KINDS,
    RUN_FILES, OPTIONAL_COLUMNS, PUBLISH_OUTCOMES, CONN_EVENTS, FAULT_OUTCOMES,
    HOSTILE_COLUMNS, SHAPE_PREFIX, shape_detail, parse_shape_detail,
)

# How each column is parsed. "flag" is a 0/1 (or true/false) column read into bool;
# "int" columns may be empty, so they become pandas' nullable Int64.
_FLOAT, _INT, _STR, _FLAG = "float", "int", "str", "flag"
COLUMN_TYPES: dict[str, dict[str, str]] = {
    "http": {"ts": _FLOAT, "name": _STR, "method": _STR, "status": _INT, "dur_ms": _FLOAT,
             "ok": _FLAG, "instance": _STR, "error": _STR},
    "pub": {"key": _STR, "kind": _STR, "user": _STR, "ts_intended": _FLOAT, "ts_sent": _FLOAT,
            "ts_ack": _FLOAT, "outcome": _STR, "status": _INT, "id": _INT, "instance": _STR,
            "error": _STR},
    "recv": {"ts": _FLOAT, "sub": _STR, "user": _STR, "conn": _INT, "instance": _STR, "key": _STR,
             "id": _INT, "origin": _STR, "sent_ts": _FLOAT, "replay": _FLAG, "intact": _INT},
    "conn": {"ts": _FLOAT, "sub": _STR, "user": _STR, "conn": _INT, "event": _STR,
             "instance": _STR, "code": _INT, "detail": _STR},
    "users": {"ts": _FLOAT, "users": _FLOAT, "sockets": _FLOAT},
    "loadgen": {"ts": _FLOAT, "cpu": _FLOAT, "lag_mean_ms": _FLOAT, "lag_max_ms": _FLOAT},
    "hostile": {"ts": _FLOAT, "kind": _STR, "transport": _STR, "request": _STR, "user": _STR, "status": _INT,
                "outcome": _STR, "detail": _STR},
    "resources": {"ts": _FLOAT, "component": _STR, "kind": _STR, "processes": _FLOAT, "cpu": _FLOAT,
                  "cpu_max": _FLOAT, "rss_mb": _FLOAT},
    "dep_conns": {"ts": _FLOAT, "replica": _STR, "dependency": _STR, "connections": _FLOAT, "source": _STR},
}
# Low-cardinality text columns are stored as categories: less memory, faster groupby.
_CATEGORY_COLUMNS = {"name", "method", "instance", "kind", "outcome", "origin", "event", "worker", "component",
                     "replica", "dependency", "source"}
# Received frames are most of a run's rows and repeat few values per column: each
# subscriber and user on every frame, each key on every frame of its fan-out. As
# categories they take 2-4 bytes a row instead of a string object each (about 60).
_KIND_CATEGORY_COLUMNS = {"recv": {"sub", "user", "key"}}
_TRUE = {"1", "true", "True", "TRUE", "yes"}
_FALSE = {"0", "false", "False", "FALSE", "no", ""}


class RecordError(Exception):
    """A run directory, record file or journal line cannot be read. The message names it."""


@dataclass(frozen=True)
class FaultWindow:
    """One fault from the journal, after its heal line replaced its inject line."""

    id: str
    kind: str
    target: str
    start: float
    end: float | None
    outcome: str
    params: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def injected(self) -> bool:
        """Whether the fault actually took effect (a failed injection leaves no window)."""
        return self.outcome != "inject_failed"

    def end_or(self, run_end: float) -> float:
        """The window end; a fault never healed lasts to the end of the run."""
        return self.end if self.end is not None else max(run_end, self.start)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.target}".strip()


@dataclass(frozen=True)
class RunMeta:
    """run.json, with the fields the report shows pulled out; `raw` keeps the rest."""

    name: str = ""
    seed: int | str | None = None
    argv: tuple[str, ...] = ()
    versions: dict[str, Any] = field(default_factory=dict)
    stack: dict[str, Any] = field(default_factory=dict)
    scenario: str | dict[str, Any] | None = None
    timeline: Any = None
    start: float | None = None
    end: float | None = None
    slo: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunData:
    """Everything the checkers and the report read from one run directory."""

    run_dir: Path
    meta: RunMeta
    http: pd.DataFrame
    pub: pd.DataFrame
    recv: pd.DataFrame
    conn: pd.DataFrame
    users: pd.DataFrame
    faults: tuple[FaultWindow, ...]
    workers: tuple[str, ...]
    warnings: list[str] = field(default_factory=list)
    loadgen: pd.DataFrame = field(default_factory=lambda: empty_frame("loadgen"))
    hostile: pd.DataFrame = field(default_factory=lambda: empty_frame("hostile"))
    resources: pd.DataFrame = field(default_factory=lambda: empty_frame("resources"))
    dep_conns: pd.DataFrame = field(default_factory=lambda: empty_frame("dep_conns"))
    # Derived tables (delivery analysis, metric samples) computed once and shared by
    # every check and plot of this run.
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def t0(self) -> float:
        """Run start: run.json's start, else the earliest record."""
        if self.meta.start is not None:
            return float(self.meta.start)
        lo, _ = self._data_span()
        return lo

    @property
    def t_end(self) -> float:
        """Run end: the later of run.json's end and the last record or fault."""
        _, hi = self._data_span()
        if self.meta.end is not None:
            hi = max(hi, float(self.meta.end)) if math.isfinite(hi) else float(self.meta.end)
        return hi if math.isfinite(hi) else self.t0

    @property
    def duration(self) -> float:
        return max(0.0, self.t_end - self.t0)

    @property
    def instances(self) -> list[str]:
        """Replica names seen in any record, sorted."""
        names: set[str] = set()
        for frame, cols in ((self.http, ("instance",)), (self.pub, ("instance",)),
                            (self.recv, ("instance", "origin")), (self.conn, ("instance",))):
            for col in cols:
                names.update(str(v) for v in frame[col].dropna().unique())
        return sorted(names)

    def load_span(self) -> tuple[float, float]:
        """First and last record of the load (sends, requests, connection events,
        frames), else the run's own span. run.json's start includes bringing the stack
        up, so runs are aligned on this instead."""
        bounds = [b for b in (self._bounds(kind, col) for kind, col in _LOAD_COLUMNS) if b is not None]
        if not bounds:
            return self.t0, self.t_end
        return min(lo for lo, _ in bounds), max(hi for _, hi in bounds)

    def _data_span(self) -> tuple[float, float]:
        if "span" not in self.cache:
            lows, highs = [], []
            for kind, col in _SPAN_COLUMNS:
                bound = self._bounds(kind, col)
                if bound is not None:
                    lows.append(bound[0])
                    highs.append(bound[1])
            for fault in self.faults:
                lows.append(fault.start)
                highs.append(fault.end if fault.end is not None else fault.start)
            self.cache["span"] = (min(lows), max(highs)) if lows else (math.nan, math.nan)
        lo, hi = self.cache["span"]
        if not math.isfinite(lo):
            lo = float(self.meta.start) if self.meta.start is not None else 0.0
        return lo, hi

    def _bounds(self, kind: str, col: str) -> tuple[float, float] | None:
        """Min and max of one time column, None when it has no value; cached, since
        recv alone can hold millions of rows and both spans read it."""
        key = ("bounds", kind, col)
        if key not in self.cache:
            values = getattr(self, kind)[col].to_numpy(dtype="float64", na_value=np.nan)
            values = values[~np.isnan(values)]
            self.cache[key] = (float(values.min()), float(values.max())) if len(values) else None
        return self.cache[key]


# Every time column bounds the run; only the load's own activity bounds the load.
_SPAN_COLUMNS = (("http", "ts"), ("pub", "ts_intended"), ("pub", "ts_sent"), ("pub", "ts_ack"),
                 ("recv", "ts"), ("conn", "ts"), ("users", "ts"))
_LOAD_COLUMNS = (("pub", "ts_sent"), ("http", "ts"), ("conn", "ts"), ("recv", "ts"))


def write_atomic(path: Path, text: str) -> Path:
    """Write through a temporary file and rename it over `path`, so a reader (or a
    run killed mid-write) never sees half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory. Raises RecordError for a missing or unreadable run."""
    root = Path(run_dir)
    if not root.exists():
        raise RecordError(f"run directory {root} does not exist")
    if not root.is_dir():
        raise RecordError(f"{root} is not a directory (expected a run directory runs/<id>/)")
    records_dir = root / "records"
    has_records = records_dir.is_dir() and any(p.is_dir() for p in records_dir.iterdir())
    if not has_records and not (root / "run.json").exists():
        raise RecordError(
            f"{root} is not a run directory: it has neither run.json nor records/<worker>/ "
            "(a run directory is what `gauntlet run` writes under runs/)"
        )
    warnings: list[str] = []
    meta = _read_meta(root / "run.json", warnings)
    workers = sorted(p.name for p in records_dir.iterdir() if p.is_dir()) if has_records else []
    frames: dict[str, pd.DataFrame] = {}
    for kind in KINDS:
        parts = []
        for worker in workers:
            path = records_dir / worker / f"{kind}.csv"
            if path.exists():
                part = read_records(path, kind, warnings)
                if len(part):
                    part["worker"] = worker
                    parts.append(part)
        frames[kind] = _concat(kind, parts)
    for kind, name in RUN_FILES.items():
        path = root / name
        frames[kind] = read_records(path, kind, warnings) if path.exists() else empty_frame(kind).drop(
            columns="worker")
    faults = read_faults(root / "faults.jsonl", warnings)
    return RunData(run_dir=root, meta=meta, faults=faults, workers=tuple(workers),
                   warnings=warnings, **frames)


def _columns(kind: str) -> tuple[str, ...]:
    return KINDS[kind] if kind in KINDS else RUN_KINDS[kind]


def empty_frame(kind: str) -> pd.DataFrame:
    """A frame with the kind's columns and dtypes and no rows."""
    types = COLUMN_TYPES[kind]
    data = {col: pd.Series([], dtype=_pandas_dtype(kind, col, types[col])) for col in _columns(kind)}
    data["worker"] = pd.Series([], dtype="category")
    return pd.DataFrame(data)


def read_records(path: Path, kind: str, warnings: list[str] | None = None) -> pd.DataFrame:
    """Read one record CSV of the given kind (without the worker column).

    An empty file or header-only file gives an empty frame. A last line without its
    newline was cut short by a killed writer when it has the wrong number of fields; it
    is dropped with a warning. Anything else malformed raises RecordError.
    """
    warnings = warnings if warnings is not None else []
    columns = _columns(kind)
    try:
        size = path.stat().st_size
        if size == 0:
            return empty_frame(kind).drop(columns="worker")
        with path.open("rb") as fh:
            head = fh.readline()
            header = next(csv.reader([head.decode("utf-8", "replace")]), [])
            fh.seek(max(0, size - 65536))
            tail = fh.read()
    except OSError as exc:
        raise RecordError(f"{path}: cannot read: {exc.strerror or exc}") from None
    header = [h.strip() for h in header]
    if not head.endswith(b"\n"):
        # Only a (possibly partial) header was written before the writer died.
        warnings.append(f"{path}: only a partial header line; treated as empty")
        return empty_frame(kind).drop(columns="worker")
    optional = OPTIONAL_COLUMNS.get(kind, ())
    absent = [c for c in optional if c not in header]
    missing = [c for c in columns if c not in header and c not in optional]
    if missing:
        raise RecordError(
            f"{path}: header lacks column(s) {', '.join(missing)}; expected "
            f"{','.join(columns)} (see reports/records.py)"
        )
    source: Path | io.BytesIO = path
    if not tail.endswith(b"\n"):
        last = tail[tail.rfind(b"\n") + 1:]
        fields = next(csv.reader([last.decode("utf-8", "replace")]), [])
        if len(fields) != len(header) or last.count(b'"') % 2:
            # Cut short: parse everything up to the last complete line.
            with path.open("rb") as fh:
                source = io.BytesIO(fh.read(size - len(last)))
            warnings.append(f"{path}: dropped a truncated last line ({len(last)} bytes)")
    types = COLUMN_TYPES[kind]
    present = [c for c in columns if c not in absent]
    # Low-cardinality text is parsed straight into categories (the parser builds them
    # per chunk): converting a million strings afterwards costs more than the read.
    read_types = {col: ("float64" if types[col] in (_FLOAT, _INT) else
                        "category" if types[col] == _FLAG or (_is_category(kind, col) and types[col] == _STR)
                        else "str") for col in present}
    try:
        # No usecols: with it, pandas accepts rows with extra fields, and a row with
        # extra fields is two lines run together (a writer died mid-line, another appended).
        frame = pd.read_csv(
            source, dtype=read_types, keep_default_na=False,
            na_values={col: [""] for col in present}, engine="c",
        )[present]
    except pd.errors.ParserError as exc:
        raise RecordError(f"{path}: malformed CSV: {_short(exc)}") from None
    except ValueError as exc:
        raise RecordError(_locate_bad_value(path, source, tuple(present), types, exc)) from None
    except UnicodeDecodeError as exc:
        raise RecordError(f"{path}: not UTF-8 text: {exc.reason}") from None
    for col in absent:
        frame[col] = np.nan
    return _typed(frame, kind, path)


def read_faults(path: Path, warnings: list[str] | None = None) -> tuple[FaultWindow, ...]:
    """Fold the fault journal: one FaultWindow per id, the last line for an id wins."""
    warnings = warnings if warnings is not None else []
    if not path.exists():
        return ()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecordError(f"{path}: cannot read: {exc.strerror or exc}") from None
    lines = data.split(b"\n")
    by_id: dict[str, FaultWindow] = {}
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        is_last = number == len(lines)  # no newline after it: possibly cut short
        try:
            record = json.loads(raw)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            if is_last:
                warnings.append(f"{path}: dropped a truncated last line")
                continue
            raise RecordError(f"{path}:{number}: not a JSON object: {_short(exc)}") from None
        fault = _fault_from(record, f"{path}:{number}")
        by_id[fault.id] = fault
    return tuple(sorted(by_id.values(), key=lambda f: (f.start, f.id)))


def _fault_from(record: dict[str, Any], where: str) -> FaultWindow:
    for key in ("id", "kind", "start"):
        if record.get(key) in (None, ""):
            raise RecordError(f"{where}: fault record lacks {key!r}")
    try:
        start = float(record["start"])
        end = None if record.get("end") is None else float(record["end"])
    except (TypeError, ValueError):
        raise RecordError(f"{where}: fault start/end must be epoch seconds") from None
    outcome = str(record.get("outcome") or ("active" if end is None else "ok"))
    if outcome not in FAULT_OUTCOMES:
        raise RecordError(f"{where}: unknown fault outcome {outcome!r}; one of {', '.join(FAULT_OUTCOMES)}")
    params = record.get("params") or {}
    return FaultWindow(
        id=str(record["id"]), kind=str(record["kind"]), target=str(record.get("target") or ""),
        start=start, end=end, outcome=outcome,
        params=params if isinstance(params, dict) else {"value": params},
        error=None if record.get("error") is None else str(record["error"]),
    )


def _read_meta(path: Path, warnings: list[str]) -> RunMeta:
    if not path.exists():
        warnings.append(f"{path.parent}: no run.json; run metadata unknown")
        return RunMeta(name=path.parent.name)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise RecordError(f"{path}: not valid JSON: {_short(exc)}") from None
    except OSError as exc:
        raise RecordError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not isinstance(raw, dict):
        raise RecordError(f"{path}: expected a JSON object")

    def number(*keys: str) -> float | None:
        key = next((k for k in keys if raw.get(k) is not None), keys[0])
        value = raw.get(key)
        try:
            return None if value is None else float(value)
        except (TypeError, ValueError):
            warnings.append(f"{path}: {key!r} is not epoch seconds: {value!r}")
            return None

    slo = raw.get("slo") or ()
    if isinstance(slo, str):
        slo = (slo,)
    argv = raw.get("argv") or ()
    return RunMeta(
        name=str(raw.get("name") or path.parent.name), seed=raw.get("seed"),
        argv=tuple(str(a) for a in argv) if isinstance(argv, (list, tuple)) else (str(argv),),
        versions=dict(raw.get("versions") or {}), stack=dict(raw.get("stack") or {}),
        scenario=raw.get("scenario"), timeline=raw.get("timeline"),
        start=number("start", "started"), end=number("end", "ended", "finished"),
        slo=tuple(str(s) for s in slo), raw=raw,
    )


def _typed(frame: pd.DataFrame, kind: str, path: Path) -> pd.DataFrame:
    types = COLUMN_TYPES[kind]
    out = {}
    for col in _columns(kind):
        series = frame[col]
        kind_of = types[col]
        if kind_of == _INT:
            values = series.to_numpy(dtype="float64")
            present = ~np.isnan(values)
            fractional = present & ~(np.isfinite(values) & (np.mod(values, 1, where=np.isfinite(values),
                                                                      out=np.zeros_like(values)) == 0))
            if fractional.any():
                row = int(fractional.argmax())
                raise RecordError(
                    f"{path}: line {row + 2}: column {col!r} must be an integer, got {values[row]!r}"
                )
            series = series.astype("Int64")
        elif kind_of == _FLAG:
            # Judged per category (a handful of spellings), not per row.
            flags = series.astype("category") if not isinstance(series.dtype, pd.CategoricalDtype) else series
            names = [str(c) for c in flags.cat.categories]
            bad_names = [n for n in names if n not in _TRUE | _FALSE]
            if bad_names:
                row = int(np.flatnonzero(flags.isin(bad_names).to_numpy())[0])
                raise RecordError(f"{path}: line {row + 2}: column {col!r} must be 0 or 1, got {str(flags.iloc[row])!r}")
            truth = np.array([n in _TRUE for n in names] + [False], dtype=bool)  # missing (-1) is false
            series = pd.Series(truth[flags.cat.codes.to_numpy()], index=series.index)
        elif _is_category(kind, col) and not isinstance(series.dtype, pd.CategoricalDtype):
            series = series.astype("category")
        out[col] = series
    return pd.DataFrame(out)


def _concat(kind: str, parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        return empty_frame(kind)
    if len(parts) == 1:
        frame = parts[0]
    else:
        # Categories differ per worker: union them (codes are remapped, no string is
        # hashed again), column by column, then concatenate the rest as is.
        categorical = [c for c in parts[0].columns if isinstance(parts[0][c].dtype, pd.CategoricalDtype)
                       and all(isinstance(p[c].dtype, pd.CategoricalDtype) for p in parts)]
        united = {c: union_categoricals([p[c] for p in parts]) for c in categorical}
        frame = pd.concat([p.drop(columns=categorical) for p in parts], ignore_index=True)
        for c in categorical:
            frame[c] = pd.Categorical(united[c])
        frame = frame[list(parts[0].columns)]
    for col in frame.columns:
        if _is_category(kind, col) and not isinstance(frame[col].dtype, pd.CategoricalDtype):
            frame[col] = frame[col].astype("category")
    return frame.reset_index(drop=True)


def _is_category(kind: str, col: str) -> bool:
    return col in _CATEGORY_COLUMNS or col in _KIND_CATEGORY_COLUMNS.get(kind, ())


def _pandas_dtype(kind: str, col: str, kind_of: str) -> str:
    if kind_of == _FLOAT:
        return "float64"
    if kind_of == _INT:
        return "Int64"
    if kind_of == _FLAG:
        return "bool"
    return "category" if _is_category(kind, col) else "str"


def _locate_bad_value(path: Path, source: Path | io.BytesIO, columns: tuple[str, ...],
                      types: dict[str, str], exc: Exception) -> str:
    """Find the first non-numeric value in a numeric column, for the error message."""
    if isinstance(source, io.BytesIO):
        source.seek(0)
    try:
        text = pd.read_csv(source, usecols=list(columns), dtype="str", keep_default_na=False)
    except Exception:  # the first error is the better message then
        return f"{path}: {_short(exc)}"
    for col in columns:
        if types[col] in (_FLOAT, _INT):
            values = text[col]
            parsed = pd.to_numeric(values.where(values != "", "nan"), errors="coerce")
            bad = parsed.isna() & (values != "") & (values.str.lower() != "nan")
            if bad.any():
                row = int(bad.to_numpy().argmax())
                return f"{path}: line {row + 2}: column {col!r} must be a number, got {values.iloc[row]!r}"
    return f"{path}: {_short(exc)}"


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
