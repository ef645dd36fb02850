"""`gauntlet run`: the one-shot main job.

stack up → Locust headless (a subprocess) with the chaos timeline alongside, sharing
one start time → Locust stops and drains → heal everything → stack down → checks and
report → exit code (non-zero when a check or a latency target fails).

Every step has a deadline; Ctrl-C stops the load, heals, tears down and still writes
the report from what was recorded (partial results are results).
"""

from __future__ import annotations

import ast
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.live import read_figures, status_line
from harness.loadgen import LoadError, LoadPlan, LoadProcess
from harness.rundir import new_run_dir, update_run_meta
from harness.spec import StackSpec
from harness.stack import LocalStack
from harness.units import format_duration
from harness.versions import collect_versions

SCENARIOS_DIR = Path(__file__).resolve().parent.parent / "scenarios"
# After the stages end, how long Locust may take to stop users, drain publishes and
# ship records before it is stopped by force.
STOP_MARGIN = 120.0


class RunError(Exception):
    """The run could not be carried out (not a failed check: those are verdicts)."""


def resolve_scenario(text: str) -> Path:
    path = Path(text)
    if path.is_file():
        return path.resolve()
    named = SCENARIOS_DIR / f"{text.removesuffix('.py')}.py"
    if "/" not in text and named.is_file():
        return named
    known = sorted(p.stem for p in SCENARIOS_DIR.glob("*.py") if not p.stem.startswith("_") and _is_locustfile(p))
    raise ValueError(f"no scenario {text!r}: give a locustfile path or one of {', '.join(known)}")


def _is_locustfile(path: Path) -> bool:
    try:
        return "install(" in path.read_text()
    except OSError:
        return False


def scenario_slo(path: Path) -> list[str]:
    """A locustfile may declare `SLO = ["http_req_duration: p(95)<500", ...]` at top level.

    Read without importing it: importing a locustfile patches the process for gevent.
    """
    try:
        tree = ast.parse(path.read_text(), str(path))
    except (OSError, SyntaxError):
        return []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "SLO" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                raise ValueError(f"{path}: SLO must be a literal list of threshold strings") from None
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{path}: SLO must be a list of threshold strings")
            return list(value)
    return []


@dataclass
class RunPlan:
    """Everything `gauntlet run` will do, checked before anything starts."""

    scenario: Path
    spec: StackSpec
    seed: int
    duration: float  # seconds the stages last (the load run's planned length)
    stages: str | None = None  # None: the scenario's own default stages
    cut: float | None = None  # -t: stop before the stages end
    timeline: object | None = None  # chaos.timeline.Timeline, validated
    timeline_label: str = ""
    slo: list[str] = field(default_factory=list)
    processes: int = 1
    locust_args: list[str] = field(default_factory=list)
    allow_remote: bool = False
    argv: list[str] = field(default_factory=list)


Progress = Callable[[str], None]


class RunOutcome:
    def __init__(self, run_dir: Path, exit_code: int, report: Path | None, interrupted: bool) -> None:
        self.run_dir = run_dir
        self.exit_code = exit_code
        self.report = report
        self.interrupted = interrupted


def execute(plan: RunPlan, progress: Progress = print, live: bool = True) -> RunOutcome:
    from chaos.player import TimelinePlayer
    from chaos.target import LocalHandle

    run_dir = new_run_dir(plan.spec.runs_dir, f"{plan.scenario.stem}-{plan.spec.broker}")
    plan.spec.run_dir = run_dir
    update_run_meta(
        run_dir, name=run_dir.name, argv=plan.argv, seed=plan.seed, scenario=str(plan.scenario),
        stages=plan.stages, planned_duration_s=plan.duration, timeline=plan.timeline_label,
        timeline_toml=plan.timeline.to_toml() if plan.timeline is not None else None,
        slo=plan.slo, processes=plan.processes, versions=collect_versions(), created=time.time(),
    )
    progress(f"run {run_dir.name} (seed {plan.seed})")
    interrupted = False
    stack = LocalStack(plan.spec, progress=lambda m: progress(f"  {m}"))
    player = None
    locust = None
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def on_signal(signum, _frame) -> None:
        nonlocal interrupted
        if interrupted:  # second Ctrl-C: stop waiting for a graceful stop
            raise KeyboardInterrupt
        interrupted = True
        progress("\ninterrupted: stopping the load, healing, tearing down; the report keeps what was recorded")
        if locust is not None and locust.running():
            locust.child.signal(signal.SIGTERM)

    try:
        for s in previous:
            signal.signal(s, on_signal)
        state = stack.up()
        if interrupted:
            raise KeyboardInterrupt
        locust = LoadProcess(LoadPlan(
            scenario=plan.scenario, host=state.lb_url, run_dir=run_dir, state_file=run_dir / "state.json",
            seed=plan.seed, stages=plan.stages, cut=plan.cut, processes=plan.processes,
            allow_remote=plan.allow_remote, extra=plan.locust_args))
        update_run_meta(run_dir, locust_argv=locust.plan.argv()[1:], stack=stack.spec_summary())
        start = locust.start()
        # The report's clock starts with the load, so a timeline's `at = "20s"` is 20 s on its plots.
        update_run_meta(run_dir, started=start)
        if plan.timeline is not None:
            player = TimelinePlayer(plan.timeline, LocalHandle(stack), progress=lambda m: progress(f"  chaos: {m}"))
            player.start(at=start)
        _watch(locust, plan, run_dir, start, player, progress, live)
        if not interrupted:
            try:
                locust.check()
            except LoadError as exc:
                raise RunError(str(exc)) from None
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if locust is not None:
            locust.stop()
        if player is not None:
            player.stop()
        stack.down()
        for s, handler in previous.items():
            signal.signal(s, handler)
        update_run_meta(run_dir, ended=time.time(), interrupted=interrupted)
    return _report(run_dir, plan, progress, interrupted)


def _watch(locust: LoadProcess, plan: RunPlan, run_dir: Path, start: float, player, progress: Progress,
           live: bool) -> None:
    """Wait for Locust under a deadline, printing the live status line."""
    total = plan.cut or plan.duration
    deadline = time.monotonic() + total + STOP_MARGIN
    tty = live and sys.stdout.isatty()
    last_print = 0.0
    while locust.wait(0.5 if tty else 1.0) is None:
        if time.monotonic() > deadline:
            progress(f"the load generator did not stop {format_duration(STOP_MARGIN)} after its stages; stopping it")
            locust.stop()
            break
        now = time.monotonic()
        if live and (tty or now - last_print >= 10):
            line = status_line(time.time() - start, total, read_figures(run_dir, run_dir / "locust"),
                               player.status() if player else "")
            if tty:
                sys.stdout.write("\r\033[K" + line)
                sys.stdout.flush()
            else:
                progress(line)
            last_print = now
    if tty:
        sys.stdout.write("\n")


def _report(run_dir: Path, plan: RunPlan, progress: Progress, interrupted: bool) -> RunOutcome:
    from reports.cli import print_verdicts
    from reports.html import report_run

    progress("checking and writing the report ...")
    verdict, path = report_run(run_dir)
    print_verdicts(verdict, sys.stdout)
    progress(f"report: {path}")
    code = verdict.exit_code
    if interrupted and code == 0:
        code = 130
    return RunOutcome(run_dir, code, path, interrupted)
