"""`gauntlet run`: the one-shot main job.

stack up → Locust headless (a subprocess) with the chaos timeline alongside, sharing
one start time, and the resource sampler watching every process → Locust stops and
drains → heal everything → stack down → checks and report → exit code (non-zero when
a check or a latency target fails).

Every step has a deadline; Ctrl-C stops the load, heals, tears down and still writes
the report from what was recorded (partial results are results).
"""

from __future__ import annotations

import ast
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.live import read_figures, status_line
from harness.loadgen import LoadError, LoadPlan, LoadProcess
from harness.resources import LoadProcesses, stack_sampler
from harness.rundir import new_run_dir, update_run_meta
from harness.spec import StackSpec
from harness.backends import make_stack
from common.units import format_duration
from harness.versions import collect_versions

# After the stages end, how long Locust may take to stop users, drain publishes and
# ship records before it is stopped by force.
STOP_MARGIN = 120.0


class RunError(Exception):
    """The run could not be carried out (not a failed check: those are verdicts)."""


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


def default_stages(path: Path) -> str | None:
    """The scenario's own stages (`stages="..."` in its install call), read without importing it."""
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "stages" and isinstance(node.value, ast.Constant):
            return str(node.value.value)
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "default_stages"
                                                for t in node.targets):
            if isinstance(node.value, ast.Constant):
                return str(node.value.value)
    return None


@dataclass(frozen=True)
class LoadShape:
    stages: str | None  # None: the scenario's own default stages
    cut: float | None  # stop before the stages end
    duration: float  # seconds the load lasts: the stages, shortened by the cut


def load_shape(scenario: Path, stages: str | None, users: int | None, cut: float | None, *,
               hold: float = 60.0, ramp: float = 10.0, option_prefix: str = "") -> LoadShape:
    """What to give Locust, from either k6-style `stages` or a flat `users` load.

    `users` ramps up over at most `ramp` seconds and holds them until `cut` (default
    `hold`); otherwise the stages (or the scenario's own) run, cut short by `cut`.
    Raises ValueError naming the bad input (`option_prefix` "--" names the CLI options)."""
    from scenarios.stages import parse_stages

    if users is not None and stages:
        raise ValueError(f"give {option_prefix}users or {option_prefix}stages, not both")
    if cut is not None and cut <= 0:
        raise ValueError(f"{option_prefix}duration must be more than 0")
    if users is not None:
        if users < 1:
            raise ValueError(f"{option_prefix}users must be at least 1, not {users}")
        held = cut or hold
        first = min(ramp, held / 4)
        stages, cut = f"{first:g}s:{users},{held - first:g}s:{users}", None
    text = stages or default_stages(scenario)
    if text is None:
        raise ValueError(f"{scenario}: no default stages found; give {option_prefix}stages or {option_prefix}users")
    duration = sum(s.duration for s in parse_stages(text))
    return LoadShape(stages, cut, duration if cut is None else min(duration, cut))


def recovery_margin() -> float:
    """How long the load must go on after the last heal for the report to judge its
    recovery: the heal window plus one rolling latency window (reports/recovery.py)."""
    from reports.delivery import DeliveryOptions

    o = DeliveryOptions()
    return o.heal_window_s + o.rolling_window_s


def cover_recovery(shape: LoadShape, scenario: Path, users: int | None, last_heal: float,
                   margin: float) -> tuple[LoadShape, str]:
    """Make the load last past `last_heal + margin`, so the recovery of the last fault
    can be judged; or say why it will not. Returns the shape and a line for the user
    ('' when nothing needed doing).

    A flat `users` load holds longer; a load cut short by a duration runs more of its
    stages; stages that end with users still on get a hold at that level appended.
    Stages that end at zero users are the user's explicit end and stay as they are.
    """
    from scenarios.stages import parse_stages

    needed = last_heal + margin
    if not last_heal or shape.duration >= needed:
        return shape, ""
    why = (f"so it goes on past the last heal ({format_duration(last_heal)}) plus the "
           f"{format_duration(margin)} recovery needs to be judged")
    if users is not None:
        longer = load_shape(scenario, None, users, needed)
    else:
        text = shape.stages or default_stages(scenario) or ""
        stages = parse_stages(text)
        total = sum(s.duration for s in stages)
        if total >= needed:
            longer = LoadShape(shape.stages, needed, needed)
        elif stages and stages[-1].target > 0:
            longer = LoadShape(f"{text},{needed - total:g}s:{stages[-1].target}", None, needed)
        else:
            return shape, (f"note: the load ends at {format_duration(shape.duration)}, "
                           f"{format_duration(max(0.0, shape.duration - last_heal))} after the last heal "
                           f"({format_duration(last_heal)}); its stages end at 0 users, so it is not extended, "
                           f"and the recovery of the last fault cannot be fully judged (it needs "
                           f"{format_duration(margin)} after the heal; give longer --stages)")
    return longer, (f"the load lasts {format_duration(longer.duration)} instead of "
                    f"{format_duration(shape.duration)}, {why}")


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
    load_note: str = ""  # how the load was lengthened for recovery, or why it was not


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
    update_run_meta(
        run_dir, name=run_dir.name, argv=plan.argv, seed=plan.seed, scenario=str(plan.scenario),
        stages=plan.stages, planned_duration_s=plan.duration, timeline=plan.timeline_label,
        timeline_toml=plan.timeline.to_toml() if plan.timeline is not None else None,
        slo=plan.slo, processes=plan.processes, versions=collect_versions(), created=time.time(),
        load_note=plan.load_note or None,
    )
    progress(f"run {run_dir.name} (seed {plan.seed})")
    interrupted = False
    stack = make_stack(replace(plan.spec, run_dir=run_dir), progress=lambda m: progress(f"  {m}"))
    player = None
    locust = None
    sampler = None
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def on_signal(signum, _frame) -> None:
        nonlocal interrupted
        if interrupted or locust is None:
            # A second Ctrl-C stops waiting for a graceful stop; during bring-up there is
            # nothing to drain, so stop bringing up at once (up() tears down what it started).
            interrupted = True
            raise KeyboardInterrupt
        interrupted = True
        progress("\ninterrupted: stopping the load, healing, tearing down; the report keeps what was recorded")
        if locust.running():
            locust.child.signal(signal.SIGTERM)

    load_failure = ""
    try:
        for s in previous:
            signal.signal(s, on_signal)
        try:
            state = stack.up()
        except Exception:
            if interrupted:  # a child the interrupt reached failed first: still an interrupt
                raise KeyboardInterrupt from None
            raise
        if interrupted:
            raise KeyboardInterrupt
        sampler = stack_sampler(run_dir, run_dir / "state.json")
        sampler.start()
        locust = LoadProcess(LoadPlan(
            scenario=plan.scenario, host=state.lb_url, run_dir=run_dir, state_file=run_dir / "state.json",
            seed=plan.seed, stages=plan.stages, cut=plan.cut, processes=plan.processes,
            allow_remote=plan.allow_remote, extra=plan.locust_args, config=plan.spec.config_path))
        update_run_meta(run_dir, locust_argv=locust.plan.argv()[1:])
        start = locust.start()
        sampler.add_source(LoadProcesses(locust.child.pid, run_dir / "records", forks=plan.processes > 1))
        stack.track_load(locust.child)  # the reaper stops the load first if this process dies
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
                load_failure = str(exc)  # still judged and reported: what was recorded stands
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if locust is not None:
            locust.stop()
        if player is not None:
            player.stop()
        if sampler is not None:
            update_run_meta(run_dir, resources=sampler.stop().to_dict())
        stack.down()
        for s, handler in previous.items():
            signal.signal(s, handler)
        update_run_meta(run_dir, ended=time.time(), interrupted=interrupted,
                        **({"load_failure": load_failure} if load_failure else {}))
    if locust is None:
        progress(f"interrupted while bringing the stack up; torn down, no load ran ({run_dir})")
        return RunOutcome(run_dir, 130, None, True)
    outcome = _report(run_dir, plan, progress, interrupted)
    if load_failure:
        print(f"gauntlet: the load generator failed: {load_failure}", file=sys.stderr)
        outcome.exit_code = max(outcome.exit_code, 1) if outcome.exit_code != 130 else 130
    return outcome


def _watch(locust: LoadProcess, plan: RunPlan, run_dir: Path, start: float, player, progress: Progress,
           live: bool) -> None:
    """Wait for Locust under a deadline, printing the live status line."""
    total = plan.duration  # the stages' length, already shortened by any cut
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
    try:
        verdict, path = report_run(run_dir)
    except KeyboardInterrupt:
        # The stack is down and every record is on disk: only the report is missing.
        progress(f"interrupted while writing the report; the records are complete. Write it with:\n"
                 f"  gauntlet report {run_dir}")
        update_run_meta(run_dir, report="interrupted")
        return RunOutcome(run_dir, 130, None, True)
    print_verdicts(verdict, sys.stdout)
    progress(f"report: {path}")
    code = verdict.exit_code
    if interrupted and code != 1:  # a failure found before the interrupt stays a failure
        code = 130
    return RunOutcome(run_dir, code, path, interrupted)
