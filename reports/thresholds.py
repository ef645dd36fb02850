"""Latency targets in k6's threshold syntax, evaluated on raw samples.

    http_req_duration{name:POST /api/notifications}: p(95)<500, p(99)<1000
    http_req_failed: rate<0.01
    ws_delivery_latency{path:cross}: p(99)<250
    delivery_lost: count==0
    publish_duration_corrected: p(99)<1s

Grammar (whitespace is free between tokens):

    threshold  := metric [ "{" tag ("," tag)* "}" ] ":" condition ("," condition)*
    tag        := name ":" value          value runs to the next "," or the closing "}"
    condition  := aggregation operator number [unit]
    aggregation:= "p(" N ")" | avg | min | max | med | rate | count
    operator   := < | <= | > | >= | == | !=
    unit       := ms | s   (trend metrics, default ms)  |  %  (rate metrics)

Metric names and their tags are in reports/metrics.py (docs/reports.md lists them).
Sources, later wins for the same metric, tags and aggregation: the defaults below, the
run's own (run.json "slo", written by `gauntlet run` from the scenario and gauntlet.toml
[slo]), then `--slo`.
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from reports import metrics
from reports.delivery import DeliveryOptions
from reports.metrics import COUNTER, GAUGE, METRICS, RATE, TREND
from reports.phases import phase_seconds
from reports.records import RunData
from reports.check import CheckResult, Verdict

# What our users' docs promise when nothing else is said: p95 < 500 ms, p99 < 1 s,
# errors < 1 %.
# Real-time order holds in every correct system outside faults (reports/order.py).
DEFAULT_SLO: tuple[str, ...] = (
    "http_req_duration: p(95)<500, p(99)<1000",
    "http_req_failed: rate<0.01",
    "delivery_out_of_order{phase:steady}: count==0",
    # Outside faults every subscriber holds a connection: one that cannot get one is owed
    # nothing, so without this a stack whose replicas all died would deliver "100 %".
    "ws_subscribers_unconnected{phase:steady}: count==0",
)
SLO_CACHE_KEY = "slo_results"

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
    "<": operator.lt, ">": operator.gt,
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_AGG_WORDS = ("avg", "min", "max", "med", "rate", "count")


class ThresholdError(ValueError):
    """A threshold expression that does not parse; str() shows it with a caret."""

    def __init__(self, expr: str, pos: int, reason: str, source: str = "") -> None:
        self.expr, self.pos, self.reason, self.source = expr, pos, reason, source
        where = f" ({source})" if source else ""
        super().__init__(f"bad threshold{where}: {reason}\n  {expr}\n  {' ' * pos}^")


@dataclass(frozen=True)
class Condition:
    aggregation: str            # p | avg | min | max | med | rate | count
    percentile: float | None    # for p(N)
    op: str
    target: float               # in the metric's unit (ms for trends, a fraction for rates)
    text: str                   # as written

    @property
    def label(self) -> str:
        return f"p({_num(self.percentile)})" if self.aggregation == "p" else self.aggregation

    @property
    def canonical(self) -> str:
        return f"{self.label}{self.op}{_num(self.target)}"


@dataclass(frozen=True)
class Threshold:
    metric: str
    tags: tuple[tuple[str, str], ...]
    conditions: tuple[Condition, ...]
    text: str
    source: str = ""

    @property
    def selector(self) -> str:
        tags = ",".join(f"{k}:{v}" for k, v in self.tags)
        return f"{self.metric}{{{tags}}}" if tags else self.metric


@dataclass(frozen=True)
class ThresholdResult:
    """One condition of one threshold, with what the run showed."""

    selector: str
    metric: str
    tags: dict[str, str]
    condition: str
    aggregation: str
    op: str
    target: float
    unit: str
    observed: float | None
    samples: int
    verdict: Verdict
    source: str
    # The condition itself, so a re-evaluation (per phase) need not parse the text back.
    parsed: Condition = field(repr=False, compare=False)
    # Why the verdict is what it is beyond the numbers (a miss the load generator's own
    # lateness covers is unknown, reports/measurement.py).
    note: str = ""

    @property
    def name(self) -> str:
        return f"slo {self.selector}: {self.condition}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "selector": self.selector, "metric": self.metric, "tags": self.tags,
                "condition": self.condition, "aggregation": self.aggregation, "op": self.op,
                "target": self.target, "unit": self.unit, "observed": self.observed,
                "samples": self.samples, "verdict": self.verdict.value, "source": self.source,
                "note": self.note}


def parse(expr: str, source: str = "") -> Threshold:
    """Parse one threshold expression; ThresholdError points at the bad part."""
    return _Parser(expr, source).threshold()


def resolve(*layers: Sequence[str], use_defaults: bool = True,
            labels: Sequence[str] = ("run.json", "--slo")) -> list[Threshold]:
    """Merge threshold sources; for the same metric, tags and aggregation, later wins."""
    sources: list[tuple[str, Sequence[str]]] = [("default", DEFAULT_SLO)] if use_defaults else []
    for i, layer in enumerate(layers):
        if isinstance(layer, str):
            layer = (layer,)
        sources.append((labels[i] if i < len(labels) else f"source {i + 1}", layer))
    chosen: dict[tuple[Any, ...], tuple[Threshold, Condition]] = {}
    for label, exprs in sources:
        for expr in exprs:
            th = parse(expr, label)
            for cond in th.conditions:
                key = (th.metric, tuple(sorted(th.tags)), cond.label, _direction(cond.op))
                chosen.pop(key, None)  # re-insert so the order shows the winning source
                chosen[key] = (th, cond)
    grouped: dict[tuple[Any, ...], list[Condition]] = {}
    owners: dict[tuple[Any, ...], Threshold] = {}
    for th, cond in chosen.values():
        gkey = (th.metric, th.tags, th.source, th.text)
        grouped.setdefault(gkey, []).append(cond)
        owners[gkey] = th
    return [Threshold(owners[k].metric, owners[k].tags, tuple(c), owners[k].text, owners[k].source)
            for k, c in grouped.items()]


def evaluate(run: RunData, thresholds: Sequence[Threshold],
             options: DeliveryOptions | None = None) -> list[ThresholdResult]:
    """Each condition's observed value from the metric's raw samples, and its verdict."""
    results = []
    for th in thresholds:
        metric = METRICS[th.metric]
        table = _filtered(metrics.samples(run, th.metric, options), th.tags)
        values = table["value"].to_numpy(dtype="float64")
        for cond in th.conditions:
            observed = _aggregate(values, cond, metric.kind, run.duration)
            if observed is None:
                verdict = Verdict.UNKNOWN
            else:
                verdict = Verdict.PASS if _OPS[cond.op](observed, cond.target) else Verdict.FAIL
            results.append(ThresholdResult(
                selector=th.selector, metric=th.metric, tags=dict(th.tags), condition=cond.canonical,
                aggregation=cond.label, op=cond.op, target=cond.target, unit=metric.unit,
                observed=observed, samples=len(values), verdict=verdict, source=th.source, parsed=cond,
            ))
    return results


def observed_by_phase(run: RunData, result: ThresholdResult,
                      options: DeliveryOptions | None = None) -> dict[str, float | None]:
    """The condition's observed value in each run phase: where a target broke.

    A counter's rate is per second of that phase, not of the whole run: a count
    inside a 10 s fault divided by the run's 10 minutes would look like a collapse.
    """
    metric = METRICS[result.metric]
    if "phase" not in metric.tags or "phase" in result.tags:
        return {}
    options = options or DeliveryOptions()
    table = _filtered(metrics.samples(run, result.metric, options), tuple(result.tags.items()))
    seconds = phase_seconds(run, options.heal_window_s) if metric.kind == COUNTER else {}
    values = table["value"].to_numpy(dtype="float64")
    phases = table["phase"].astype(object).to_numpy()
    return {phase: _aggregate(values[phases == phase], result.parsed, metric.kind,
                              seconds.get(phase, run.duration))
            for phase in metrics.PHASES}


def _filtered(table: Any, tags: tuple[tuple[str, str], ...]) -> Any:
    for key, value in tags:
        column = table[key]
        if hasattr(column, "cat"):
            column = column.astype(object)
        table = table[(column.astype(str) == value).to_numpy()]
    return table


def check(run: RunData, thresholds: Sequence[Threshold],
          options: DeliveryOptions | None = None) -> list[CheckResult]:
    """One check result per condition, so CI lists each target on its own."""
    results = [_judge_measurement(run, r) for r in evaluate(run, thresholds, options)]
    run.cache[SLO_CACHE_KEY] = results
    out = []
    for r in results:
        shown = format_value(r.observed, r.unit, r.aggregation)
        target = format_value(r.target, r.unit, r.aggregation)
        if r.note:
            summary = f"{r.aggregation} = {shown} ({r.samples:,} samples), target {r.op} {target}: {r.note}"
        elif r.verdict is Verdict.UNKNOWN:
            summary = f"no samples of {r.selector}: cannot tell whether {r.condition} holds"
        else:
            counted = "" if METRICS[r.metric].kind == COUNTER else f" ({r.samples:,} samples)"
            judges = METRICS[r.metric].judges
            summary = ((f"{judges}: " if judges else "") + f"{r.aggregation} = {shown}{counted}, target {r.op} {target}"
                       + ("" if r.verdict is Verdict.PASS else " — target missed"))
        out.append(CheckResult(r.name, r.verdict, summary, {"threshold": r.to_dict()}))
    return out


def _judge_measurement(run: RunData, r: ThresholdResult) -> ThresholdResult:
    """A missed latency target the load generator's own lateness covers is unknown;
    one missed by more says so (reports/measurement.py)."""
    if r.verdict is not Verdict.FAIL or METRICS[r.metric].kind != TREND:
        return r
    from reports.measurement import assess, lateness_for, unjudgeable

    m = assess(run)
    why = unjudgeable(m, r.metric, r.observed, r.target, r.op)
    if why:
        return replace(r, verdict=Verdict.UNKNOWN, note=why)
    if m.valid is False:
        return replace(r, note=f"missed even allowing for the load generator's own lateness "
                               f"(up to {lateness_for(m, r.metric):,.0f} ms; it could not keep up)")
    return r


def format_value(value: float | None, unit: str, aggregation: str = "") -> str:
    """A value for people: 512.3 ms, 0.42 %, 17."""
    if value is None:
        return "—"
    if aggregation == "count":
        return f"{value:,.0f}"
    if unit == "ms":
        return f"{value:,.0f} ms" if abs(value) >= 100 else f"{value:,.1f} ms"
    if aggregation == "rate" and unit == "":
        return f"{value * 100:.2f} %"
    return f"{value:.4g}"


def holds(result: ThresholdResult, observed: float) -> bool:
    """Whether an observed value meets the result's condition."""
    return bool(_OPS[result.op](observed, result.target))


def _aggregate(values: np.ndarray, cond: Condition, kind: str, duration: float) -> float | None:
    agg = cond.aggregation
    if kind == COUNTER:
        if agg == "count":
            return float(len(values))
        return float(len(values) / duration) if duration > 0 else None
    if agg == "count" and kind in (TREND, GAUGE):
        return float(len(values))
    if not len(values):
        # A rate with no sample judged nothing, so not even its count of true samples can be told.
        return None
    if agg == "count":
        return float(values.sum())
    if agg == "rate":
        return float(values.mean())
    if agg == "p":
        return float(np.percentile(values, cond.percentile))
    return float({"avg": np.mean, "min": np.min, "max": np.max, "med": np.median}[agg](values))


def _direction(op: str) -> str:
    """Same-direction conditions replace each other (p(95)<500 overrides p(95)<=800)."""
    return {"<": "upper", "<=": "upper", ">": "lower", ">=": "lower"}.get(op, op)


def _num(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:g}"


class _Parser:
    """A hand scanner: every error knows the column it happened at."""

    def __init__(self, expr: str, source: str) -> None:
        if not isinstance(expr, str):
            raise ThresholdError(str(expr), 0, f"expected a string, got {type(expr).__name__}", source)
        self.text, self.source, self.pos = expr, source, 0

    def fail(self, reason: str, pos: int | None = None) -> ThresholdError:
        return ThresholdError(self.text, self.pos if pos is None else pos, reason, self.source)

    def ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def threshold(self) -> Threshold:
        self.ws()
        if not self.text.strip():
            raise self.fail("empty threshold; write e.g. http_req_duration: p(95)<500")
        metric = self.metric()
        self.ws()
        tags: tuple[tuple[str, str], ...] = ()
        if self.peek() == "{":
            tags = self.tags(metric)
            self.ws()
        if self.peek() != ":":
            found = f"found {self.peek()!r}" if self.peek() else "the expression ends"
            raise self.fail(f"expected ':' after {metric.name}{'{...}' if tags else ''}, {found}")
        self.pos += 1
        conditions = [self.condition(metric)]
        while True:
            self.ws()
            if not self.peek():
                break
            if self.peek() != ",":
                raise self.fail(f"unexpected {self.peek()!r}; separate conditions with ','")
            self.pos += 1
            self.ws()
            if not self.peek():
                raise self.fail("expected a condition after ','")
            conditions.append(self.condition(metric))
        return Threshold(metric.name, tags, tuple(conditions), self.text.strip(), self.source)

    def metric(self) -> metrics.Metric:
        start = self.pos
        match = _NAME.match(self.text, self.pos)
        if not match:
            raise self.fail("expected a metric name, e.g. http_req_duration")
        name = match.group()
        self.pos = match.end()
        if name not in METRICS:
            close = difflib.get_close_matches(name, METRICS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise self.fail(f"unknown metric {name!r}; {hint}metrics: {', '.join(METRICS)}", start)
        return METRICS[name]

    def tags(self, metric: metrics.Metric) -> tuple[tuple[str, str], ...]:
        opening = self.pos
        self.pos += 1
        out: list[tuple[str, str]] = []
        while True:
            self.ws()
            key_at = self.pos
            match = _NAME.match(self.text, self.pos)
            if not match:
                if not self.peek():
                    raise self.fail("unclosed '{' of the tag filter", opening)
                raise self.fail("expected a tag name, e.g. {name:GET /api/items/{id}}")
            key = match.group()
            self.pos = match.end()
            if key not in metric.tags:
                raise self.fail(f"{metric.name} has no tag {key!r}; its tags: {', '.join(metric.tags)}", key_at)
            self.ws()
            if self.peek() != ":":
                raise self.fail(f"expected ':' after tag {key!r} (write {key}:value)")
            self.pos += 1
            value_at = self.pos
            depth = 0
            # The value runs to the next ',' or the closing '}' at brace depth 0, so
            # route names with braces ({name:GET /api/items/{id}}) need no quoting.
            while self.pos < len(self.text):
                ch = self.text[self.pos]
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    if depth == 0:
                        break
                    depth -= 1
                elif ch == "," and depth == 0:
                    break
                self.pos += 1
            if self.pos >= len(self.text):
                raise self.fail("unclosed '{' of the tag filter", opening)
            value = self.text[value_at:self.pos].strip()
            if not value:
                raise self.fail(f"empty value for tag {key!r}", value_at)
            allowed = metric.tag_values.get(key)
            if allowed and value not in allowed:
                raise self.fail(f"tag {key!r} is one of {', '.join(allowed)}, not {value!r}",
                                value_at + (len(self.text[value_at:]) - len(self.text[value_at:].lstrip())))
            out.append((key, value))
            if self.peek() == "}":
                self.pos += 1
                return tuple(out)
            self.pos += 1  # ','

    def condition(self, metric: metrics.Metric) -> Condition:
        self.ws()
        start = self.pos
        aggregation, percentile = self.aggregation(metric)
        self.ws()
        op = next((o for o in ("<=", ">=", "==", "!=", "<", ">") if self.text.startswith(o, self.pos)), None)
        if op is None:
            if self.peek() == "=":
                raise self.fail("use '==' to compare for equality")
            found = f"found {self.peek()!r}" if self.peek() else "the expression ends"
            raise self.fail(f"expected a comparison (<, <=, >, >=, ==, !=) after {aggregation}, {found}")
        self.pos += len(op)
        self.ws()
        match = _NUMBER.match(self.text, self.pos)
        if not match:
            found = f"found {self.peek()!r}" if self.peek() else "the expression ends"
            raise self.fail(f"expected a number after {op!r}, {found}")
        target = float(match.group())
        self.pos = match.end()
        target = self.unit(metric, target, aggregation)
        return Condition(aggregation, percentile, op, target, self.text[start:self.pos].strip())

    def aggregation(self, metric: metrics.Metric) -> tuple[str, float | None]:
        start = self.pos
        allowed = metrics.AGGREGATIONS[metric.kind]
        shown = ", ".join("p(N)" if a == "p" else a for a in allowed)
        if re.match(r"p\d", self.text[self.pos:self.pos + 2]):
            digits = re.match(r"p(\d+(?:\.\d+)?)", self.text[self.pos:])
            raise self.fail(f"write percentiles as p({digits.group(1) if digits else 'N'})")
        if self.text.startswith("p(", self.pos):
            if "p" not in allowed:
                raise self.fail(f"{metric.name} is a {metric.kind} metric: use {shown}", start)
            self.pos += 2
            self.ws()
            match = _NUMBER.match(self.text, self.pos)
            if not match:
                raise self.fail("expected a percentile number inside p(), e.g. p(95)")
            percentile = float(match.group())
            if not 0 < percentile <= 100:
                raise self.fail(f"percentile must be in (0, 100], got {match.group()}", self.pos)
            self.pos = match.end()
            self.ws()
            if self.peek() != ")":
                raise self.fail("expected ')' to close p(")
            self.pos += 1
            return "p", percentile
        match = _WORD.match(self.text, self.pos)
        if not match:
            found = f"found {self.peek()!r}" if self.peek() else "the expression ends"
            raise self.fail(f"expected an aggregation ({shown}), {found}")
        word = match.group()
        if word not in _AGG_WORDS:
            raise self.fail(f"unknown aggregation {word!r}; {metric.name} takes {shown}", start)
        if word not in allowed:
            raise self.fail(f"{metric.name} is a {metric.kind} metric: use {shown}, not {word}", start)
        self.pos = match.end()
        return word, None

    def unit(self, metric: metrics.Metric, value: float, aggregation: str) -> float:
        match = re.match(r"(\s*)(ms|s|%|[A-Za-z]+)", self.text[self.pos:])
        if not match:
            return value
        unit = match.group(2)
        if match.group(1) and unit not in ("ms", "s", "%"):
            return value  # a word after a space: the caller reports it as unexpected
        unit_at = self.pos + match.start(2)
        if metric.kind == TREND and aggregation != "count":
            if unit == "ms":
                self.pos += match.end()
                return value
            if unit == "s":
                self.pos += match.end()
                return value * 1000.0
            raise self.fail(f"unknown unit {unit!r}; durations take ms (default) or s", unit_at)
        if metric.kind == RATE and aggregation == "rate" and unit == "%":
            self.pos += match.end()
            return value / 100.0
        if unit in ("ms", "s", "%"):
            raise self.fail(f"{metric.name} {aggregation} takes a plain number, not {unit!r}", unit_at)
        return value  # a word: let the caller report it as unexpected
