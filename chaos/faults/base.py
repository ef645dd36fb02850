"""What every fault shares: a target, typed parameters, inject/heal, and a footprint.

A fault is a small dataclass. Its parameters are the dataclass fields made with
`param(...)` (typed, documented, parsed from TOML or `--param k=v`); the state a fault
learns while injecting (the pid it killed, the replicas it added, the toxics it put on
which proxies) lives in fields made with `state(...)`, so that the journal can carry
it and `gauntlet chaos heal` in another process can undo exactly that fault.

The contract, as with a Jepsen nemesis: `inject` may fail half-way; `heal` is always
called afterwards (also after a failed inject or an interrupt), must be idempotent and
must leave the stack as it was before the fault, as far as that fault is concerned.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from common.units import format_duration, parse_duration

from chaos.faults.contract import AppView
from chaos.target import StackHandle, Topology


class FaultError(Exception):
    """A fault could not be injected or healed; the message says which and why."""


@dataclass(frozen=True)
class ParamSpec:
    """How one parameter is written, parsed and explained (`gauntlet chaos list`)."""

    help: str
    parse: Callable[[Any], Any]
    kind: str  # shown to users: duration, number, integer, text, one of ...
    show: Callable[[Any], str] = str


def _number(minimum: float | None, maximum: float | None, integer: bool) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            number = int(value) if integer else float(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected {'an integer' if integer else 'a number'}, got {value!r}") from None
        if integer and isinstance(value, float) and value != int(value):
            raise ValueError(f"expected an integer, got {value!r}")
        if minimum is not None and number < minimum:
            raise ValueError(f"must be at least {minimum:g}, got {value!r}")
        if maximum is not None and number > maximum:
            raise ValueError(f"must be at most {maximum:g}, got {value!r}")
        return number
    return parse


def _duration(minimum: float, maximum: float | None) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        seconds = parse_duration(value)
        if seconds < minimum:
            raise ValueError(f"must be at least {format_duration(minimum)}, got {value!r}")
        if maximum is not None and seconds > maximum:
            raise ValueError(f"must be at most {format_duration(maximum)}, got {value!r}")
        return seconds
    return parse


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return text
    return parse


def _optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def optional(value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "off")):
            return None
        return parse(value)
    return optional


def duration_param(default: float | None, help: str, *, minimum: float = 0.0, maximum: float | None = None,
                   optional: bool = False) -> Any:
    parse = _duration(minimum, maximum)
    spec = ParamSpec(help, _optional(parse) if optional else parse, "duration",
                     lambda v: "none" if v is None else format_duration(v))
    return field(default=default, metadata={"param": spec})


def number_param(default: float | int, help: str, *, minimum: float | None = None, maximum: float | None = None,
                 integer: bool = False) -> Any:
    spec = ParamSpec(help, _number(minimum, maximum, integer), "integer" if integer else "number",
                     lambda v: f"{v:g}")
    return field(default=default, metadata={"param": spec})


def choice_param(default: str, help: str, choices: tuple[str, ...]) -> Any:
    return field(default=default, metadata={"param": ParamSpec(help, _choice(choices), "one of " + "|".join(choices))})


def state(default: Any = None, factory: Callable[[], Any] | None = None) -> Any:
    """What a fault learned while injecting; journalled so another process can heal it."""
    meta = {"state": True}
    if factory is not None:
        return field(default_factory=factory, init=False, repr=False, compare=False, metadata=meta)
    return field(default=default, init=False, repr=False, compare=False, metadata=meta)


@dataclass
class Fault:
    """Base of every fault. Subclasses set `kind`, `summary`, `heals`, and the methods."""

    kind: ClassVar[str] = ""
    summary: ClassVar[str] = ""  # one line for `gauntlet chaos list`
    heals: ClassVar[str] = ""  # what heal does, for `gauntlet chaos list` and docs
    target_help: ClassVar[str] = ""
    sustained: ClassVar[bool] = True  # False: an action (restart) that needs no `for`
    second_positional: ClassVar[str | None] = None  # `partition r2 redis`: the 2nd word is this param
    # Dependency faults: what the app's client library sees, in words (chaos/faults/contract.py).
    app_sees: ClassVar[str] = ""

    target: str
    fault_id: str = field(default="", init=False, repr=False, compare=False)
    # Set by `interrupt()`: long actions (a rolling restart) stop between their steps.
    cancelled: threading.Event = field(default_factory=threading.Event, init=False, repr=False, compare=False)

    # ---------------------------------------------------------------- to override

    @classmethod
    def resolve_target(cls, target: str, topology: Topology) -> str:
        """Return the canonical target, or raise ValueError saying what targets exist."""
        raise NotImplementedError

    def footprint(self, topology: Topology) -> frozenset[str]:
        """Resources this fault holds while active; two faults may not share one at once."""
        return frozenset({self.target})

    def inject(self, stack: StackHandle) -> None:
        raise NotImplementedError

    def heal(self, stack: StackHandle) -> None:
        raise NotImplementedError

    def view(self) -> AppView | None:
        """A dependency fault's contract with the app (chaos/faults/contract.py); None for others."""
        return None

    def nominal_seconds(self, topology: Topology) -> float:
        """How long an action (not sustained) usually takes: its window for overlap checks."""
        return 0.0

    # ---------------------------------------------------------------- shared

    def interrupt(self) -> None:
        """Ask a long inject to stop at its next step (heal still follows)."""
        self.cancelled.set()

    @classmethod
    def param_specs(cls) -> dict[str, tuple[ParamSpec, Any]]:
        return {f.name: (f.metadata["param"], f.default) for f in dataclasses.fields(cls) if "param" in f.metadata}

    @classmethod
    def param_lines(cls) -> list[str]:
        """One line per parameter, as `gauntlet chaos list` and each fault's --help show it."""
        lines = []
        for name, (spec, default) in cls.param_specs().items():
            shown = spec.show(default) if default is not None else "none"
            lines.append(f"{name.replace('_', '-')}={spec.kind} (default {shown}): {spec.help}")
        return lines

    @classmethod
    def build(cls, target: str, raw: dict[str, Any], topology: Topology | None = None) -> "Fault":
        """A fault from user input: unknown or bad parameters raise ValueError naming them."""
        specs = cls.param_specs()
        values: dict[str, Any] = {}
        for key, value in raw.items():
            name = key.replace("-", "_")
            if name not in specs:
                known = ", ".join(specs) or "none"
                raise ValueError(f"{cls.kind}: unknown parameter {key!r} (parameters: {known})")
            try:
                values[name] = specs[name][0].parse(value)
            except ValueError as exc:
                raise ValueError(f"{cls.kind}: parameter {key}: {exc}") from None
        if topology is not None:
            target = cls.resolve_target(target, topology)
        fault = cls(target=target, **values)
        fault.check()
        if topology is not None:
            fault.settle(topology)
        return fault

    def check(self) -> None:
        """Cross-parameter checks; raise ValueError."""

    def settle(self, topology: Topology) -> None:
        """Resolve parameters that depend on the stack (`broker` -> redis); raise ValueError."""

    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if "param" in f.metadata}

    def learned(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata.get("state")}

    def journal_params(self) -> dict[str, Any]:
        """Parameters plus what inject learned: enough to heal from another process."""
        return {**self.params(), **{k: v for k, v in self.learned().items() if v not in (None, [], {})}}

    @classmethod
    def restore(cls, target: str, params: dict[str, Any], fault_id: str) -> "Fault":
        """Rebuild a fault from its journal record (for `gauntlet chaos heal`)."""
        names = {f.name: f for f in dataclasses.fields(cls)}
        fault = cls(target=target, **{k: v for k, v in params.items() if k in names and "param" in names[k].metadata})
        for key, value in params.items():
            if key in names and names[key].metadata.get("state"):
                setattr(fault, key, value)
        fault.fault_id = fault_id
        return fault

    def describe(self) -> str:
        """`latency redis (latency=200ms, jitter=50ms)` for progress lines."""
        specs = self.param_specs()
        shown = [f"{k}={specs[k][0].show(v)}" for k, v in self.params().items()]
        return f"{self.kind} {self.target}" + (f" ({', '.join(shown)})" if shown else "")
