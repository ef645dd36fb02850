"""Heal everything: the rollback of `gauntlet chaos heal`, and the last line of defence.

First every fault the journal still shows as active is rebuilt from its record and
healed exactly (its own heal knows the toxics it added, the replicas it scaled, the
restart policy it changed) and its record closed. Then a sweep puts the stack into its
clean state whatever left it otherwise: crashed dependencies started again, then every
proxy enabled and without toxics, every replica continued (SIGCONT) and back in the load
balancer, dead replicas started again.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

from chaos.faults import CATALOGUE
from chaos.injector import Progress, error_text, quiet
from chaos.journal import FaultRecord, Journal, read_journal
from chaos.target import DEPENDENCIES, StackHandle
from chaos.toxiproxy_client import ToxiproxyClient, ToxiproxyError

def heal_journal(stack: StackHandle, journal: Journal, progress: Progress = quiet) -> list[FaultRecord]:
    """Heal and close every record still active in the journal."""
    closed = []
    for record in read_journal(journal.path):
        if not record.active:
            continue
        cls = CATALOGUE.get(record.kind)
        error, params = None, record.params
        if cls is None:
            error = f"unknown fault kind {record.kind!r}; healed by the sweep only"
        else:
            try:
                fault = cls.restore(record.target, record.params, record.id)
                params = fault.params()
                fault.heal(stack)
            except Exception as exc:
                error = error_text(exc)
        outcome = "heal_failed" if error else "ok"
        closed.append(journal.close(record, outcome, error, params=params))
        progress(f"healed {record.kind} {record.target} [{record.id}]: {outcome}" + (f" ({error})" if error else ""))
    return closed


def sweep(stack: StackHandle, progress: Progress = quiet) -> list[str]:
    """Return the stack to a clean state; returns what it had to do. Errors are collected, not raised
    until the end, so one failing step never keeps the others from running."""
    done: list[str] = []
    errors: list[str] = []

    def step(what: str, action: Callable[[], object]) -> None:
        """Run `action`; one that returns False did nothing worth a line (only its errors count)."""
        try:
            if action() is False:
                return
        except Exception as exc:
            errors.append(f"{what}: {error_text(exc)}")
            return
        done.append(what)
        progress(what)

    def resume(name: str) -> bool:
        # Harmless to a running process; a stopped one (pause) runs again. Every replica
        # gets it, so it is not reported.
        try:
            if stack.replica_alive(name):
                stack.signal_replica(name, signal.SIGCONT)
        except KeyError:
            pass  # scaled in since we listed it: nothing left to continue
        return False

    # Dead servers first: a proxy enabled in front of a dead server would accept
    # connections and close them, which no real outage does.
    for dep in DEPENDENCIES:
        try:
            alive = stack.dependency_alive(dep)
        except KeyError:
            continue
        if not alive:
            step(f"restarted {dep}", lambda d=dep: stack.restart_dependency(d))
    url = stack.proxy_api_url()
    if url:
        client = ToxiproxyClient(url)
        try:
            dirty = [p for p in client.proxies().values() if p.toxics or not p.enabled]
        except ToxiproxyError as exc:
            errors.append(f"fault proxy: {exc.message}")
            dirty = []
        if dirty:
            step(f"reset the fault proxy ({', '.join(p.name for p in dirty)})", client.reset)
    for name in stack.replica_names():
        step(f"continue {name}", lambda n=name: resume(n))
    for name in sorted(stack.drained()):
        step(f"undrained {name}", lambda n=name: stack.undrain(n))
    for name in stack.replica_names():
        step(f"restarted {name}", lambda n=name: stack.revive_replica(n))
    if errors:
        raise RuntimeError("heal incomplete: " + "; ".join(errors))
    return done


def heal_everything(stack: StackHandle, journal: Journal | None = None, progress: Progress = quiet) -> list[str]:
    """Heal the journal's active faults, then sweep. Returns a line per thing done."""
    if journal is None and stack.run_dir() is not None:
        journal = Journal.in_run_dir(stack.run_dir())
    lines = []
    if journal is not None:
        lines += [f"{r.kind} {r.target} [{r.id}] {r.outcome}" for r in heal_journal(stack, journal, progress)]
    return lines + sweep(stack, progress)
