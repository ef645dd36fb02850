"""Play a timeline alongside a load run: each fault at its time, healed at its end.

    player = TimelinePlayer(timeline, LocalHandle(stack), topology=topology, progress=print)
    player.start(at=run_start)          # wall clock shared with the load run
    ... player.status() ...             # "kill r2 (8s left), latency redis (12s left)"
    player.stop()                       # heals whatever is active; always call it (finally)

One scheduler thread wakes at each fault's start and hands the fault to a worker
thread, which injects it, waits out its `for`, and heals it; so a slow inject (a
rolling restart) never delays the next fault. `stop()` interrupts every wait, lets
running injects finish, heals everything still active, and waits for the threads under
a deadline. A fault due after `stop()` never starts.
"""

from __future__ import annotations

import threading
import time

from chaos.injector import Injection, Injector, Progress, quiet
from chaos.journal import FaultRecord, Journal
from chaos.target import StackHandle, Topology
from chaos.timeline import ScheduledFault, Timeline

JOIN_TIMEOUT = 240.0  # a heal may have to wait for a rolling restart's inject to finish


class TimelinePlayer:
    def __init__(self, timeline: Timeline, stack: StackHandle, *, topology: Topology | None = None,
                 journal: Journal | None = None, progress: Progress = quiet) -> None:
        self.timeline = timeline
        self.stack = stack
        self.topology = topology or stack.topology()
        timeline.validate(self.topology)  # cheap, and a player must never start an invalid timeline
        if journal is None and stack.run_dir() is not None:
            journal = Journal.in_run_dir(stack.run_dir())
        self.journal = journal
        self._progress = progress
        self.injector = Injector(stack, journal, self._say)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._scheduler: threading.Thread | None = None
        self._start_mono = 0.0
        self.records: list[FaultRecord] = []
        self._records_lock = threading.Lock()

    # ------------------------------------------------------------------ control

    def start(self, at: float | None = None) -> None:
        """Start playing; `at` is the run's start (time.time()), shared with the load run."""
        if self._scheduler is not None:
            raise RuntimeError("a player plays once")
        now_wall, now_mono = time.time(), time.monotonic()
        start_wall = now_wall if at is None else at
        # Waits use the monotonic clock so that a wall-clock step does not move faults.
        self._start_mono = now_mono - (now_wall - start_wall)
        self._scheduler = threading.Thread(target=self._schedule, name="chaos-timeline", daemon=True)
        self._scheduler.start()

    def stop(self, timeout: float = JOIN_TIMEOUT) -> list[FaultRecord]:
        """Stop: no new faults, heal the active ones now, wait for the threads. Idempotent."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        if self._scheduler is not None:
            self._scheduler.join(max(0.0, deadline - time.monotonic()))
        for injection in self.injector.active():
            injection.fault.interrupt()
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        # Whatever a stuck worker did not heal, heal from here (heal is idempotent).
        for record in self.injector.heal_all():
            self._keep(record)
        return self.results()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every fault has been played and healed; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in [self._scheduler, *self._threads]:
            if thread is None:
                continue
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                return False
        # Workers appended while we joined the scheduler are in the list now.
        return all(not t.is_alive() for t in self._threads)

    def __enter__(self) -> "TimelinePlayer":
        if self._scheduler is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ status

    def elapsed(self) -> float:
        return time.monotonic() - self._start_mono if self._start_mono else 0.0

    def active(self) -> list[Injection]:
        return self.injector.active()

    def status(self) -> str:
        """Active faults for a live status line; '' when none."""
        now = time.time()
        return ", ".join(i.status(now) for i in self.active())

    def results(self) -> list[FaultRecord]:
        with self._records_lock:
            return list(self.records)

    # ------------------------------------------------------------------ threads

    def _say(self, message: str) -> None:
        self._progress(f"[+{self.elapsed():5.1f}s] {message}")

    def _keep(self, record: FaultRecord) -> None:
        with self._records_lock:
            if all(r.id != record.id for r in self.records):
                self.records.append(record)

    def _wait_until(self, offset: float) -> bool:
        """Sleep until `offset` seconds after the start; True if stopped meanwhile."""
        return self._stop.wait(max(0.0, self._start_mono + offset - time.monotonic()))

    def _schedule(self) -> None:
        for entry in self.timeline.faults:
            if self._wait_until(entry.at):
                return
            worker = threading.Thread(target=self._play, args=(entry,), name=f"chaos-{entry.kind}", daemon=True)
            self._threads.append(worker)
            worker.start()

    def _play(self, entry: ScheduledFault) -> None:
        try:
            fault = entry.make(self.topology)
            injection = self.injector.inject(fault, entry.duration)
        except Exception as exc:  # a bug or a journal that cannot be written: say so, never die silently
            self._say(f"{entry.label()}: could not start: {exc}")
            return
        try:
            if entry.duration is not None:
                self._wait_until(entry.at + entry.duration)
        finally:
            self._keep(self.injector.heal(injection))
