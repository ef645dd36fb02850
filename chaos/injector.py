"""Inject and heal faults with a journal: the one place that pairs every inject with a heal.

`Injector.inject` writes the journal record first (so even a fault whose inject dies
half-way is on record), runs the fault, and keeps it in its active set; `heal` runs the
fault's heal whatever happened before, closes the record with its outcome, and is safe
to call twice and from two threads (the player's deadline and an interrupt can race).
`heal_all` is the rollback that `finally` blocks call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from chaos.faults.base import Fault
from chaos.journal import FaultRecord, Journal
from chaos.target import StackHandle
from common.units import format_duration

Progress = Callable[[str], None]
# Longest inject (a rolling restart of many replicas) a heal waits for before going ahead.
INJECT_GRACE = 180.0


def quiet(_: str) -> None:
    """The default progress: say nothing."""


def error_text(exc: BaseException) -> str:
    """An exception as one line for a journal record or a progress line."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return text or type(exc).__name__


@dataclass
class Injection:
    """One fault in flight: its record, when it started and when it is due to heal."""

    fault: Fault
    record: FaultRecord
    started: float  # wall clock
    until: float | None = None  # wall clock; None: until healed by hand or at the end
    inject_error: str | None = None
    healed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Set when inject has returned: heal never runs alongside a still-running inject.
    injected: threading.Event = field(default_factory=threading.Event, repr=False)

    def status(self, now: float | None = None) -> str:
        """`kill r2 (8s left)` for a live status line."""
        now = time.time() if now is None else now
        left = f" ({format_duration(max(0.0, self.until - now))} left)" if self.until else ""
        failed = " [inject failed]" if self.inject_error else ""
        return f"{self.fault.kind} {self.fault.target}{left}{failed}"


class Injector:
    def __init__(self, stack: StackHandle, journal: Journal | None = None, progress: Progress = quiet) -> None:
        self.stack = stack
        self.journal = journal
        self.progress = progress
        self._lock = threading.Lock()
        self._active: list[Injection] = []

    def inject(self, fault: Fault, duration: float | None = None) -> Injection:
        """Inject `fault`; errors are recorded on the injection, never raised (heal follows).

        A KeyboardInterrupt is recorded and re-raised; the injection stays in the active
        set so that the caller's `heal_all()` heals it.
        """
        start = time.time()
        record = self._open(fault, start)
        fault.fault_id = record.id
        injection = Injection(fault, record, start, start + duration if duration is not None else None)
        with self._lock:
            self._active.append(injection)
        self.progress(f"inject {fault.describe()} [{record.id}]")
        try:
            fault.inject(self.stack)
        except BaseException as exc:
            injection.inject_error = error_text(exc)
            self.progress(f"inject {fault.kind} {fault.target} failed: {injection.inject_error}")
            if not isinstance(exc, Exception):
                raise
        finally:
            # What inject learned (pids, added replicas, toxics) goes on record for remote heals.
            try:
                self._update(injection, params=fault.journal_params())
            finally:
                injection.injected.set()
        return injection

    def _open(self, fault: Fault, start: float) -> FaultRecord:
        if self.journal is None:
            return FaultRecord(f"f{id(fault)}", fault.kind, fault.target, fault.journal_params(), start)
        return self.journal.open(fault.kind, fault.target, fault.journal_params(), start)

    def _update(self, injection: Injection, **changes: Any) -> None:
        """Change the injection's record, on file too when there is a journal."""
        if self.journal is None:
            injection.record = replace(injection.record, **changes)
        else:
            injection.record = self.journal.update(injection.record, **changes)

    def heal(self, injection: Injection) -> FaultRecord:
        """Heal once; later calls return the closed record."""
        injection.fault.interrupt()
        if not injection.injected.wait(INJECT_GRACE):
            self.progress(f"{injection.fault.kind} {injection.fault.target}: inject still running after "
                          f"{INJECT_GRACE:.0f}s; healing anyway")
        with injection.lock:
            if injection.healed:
                return injection.record
            heal_error = None
            try:
                injection.fault.heal(self.stack)
            except Exception as exc:
                heal_error = error_text(exc)
            if injection.inject_error:
                outcome = "inject_failed"
                error = injection.inject_error + (f"; heal: {heal_error}" if heal_error else "")
            elif heal_error:
                outcome, error = "heal_failed", heal_error
            else:
                outcome, error = "ok", None
            # The closed record keeps the parameters only; what heal needed is done with.
            self._update(injection, outcome=outcome, error=error, end=time.time(),
                         params=injection.fault.params())
            injection.healed = True
        with self._lock:
            if injection in self._active:
                self._active.remove(injection)
        took = format_duration(injection.record.end - injection.started)
        self.progress(f"healed {injection.fault.kind} {injection.fault.target} after {took}: {outcome}"
                      + (f" ({error})" if error else ""))
        return injection.record

    def active(self) -> list[Injection]:
        with self._lock:
            return list(self._active)

    def heal_all(self) -> list[FaultRecord]:
        """Heal everything still active, newest first (undo in reverse order)."""
        return [self.heal(injection) for injection in reversed(self.active())]
