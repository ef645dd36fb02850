"""`gauntlet run`: stack up, load + chaos, checks, report, honest exit code."""

from __future__ import annotations

import argparse
import random
import shlex
import sys

from harness.backends import preflight
from harness.commands.up import add_stack_options, spec_from_args
from harness.config import load_project_config
from harness.loadgen import check_load_args
from harness.runner import RunError, RunPlan, cover_recovery, execute, load_shape, recovery_margin, scenario_slo
from common.units import format_duration, parse_duration
from scenarios.catalogue import resolve_scenario

DESCRIPTION = """\
Run a scenario end to end: bring a fresh stack up, run the Locust scenario headless
while a chaos timeline (or a seeded random monkey) plays, stop and drain the load,
heal every fault, tear the stack down, check delivery and latency targets, and write
runs/<id>/ (raw records, fault journal, summary.json, junit.xml, report.html).
Exit code 0 when every check passes, 1 when one fails, 2 for bad input, 3 when no check
failed but one could not be judged (verdict unknown, e.g. nothing was published: a
run that checked nothing never passes a CI gate), 130 when interrupted.
"""
EPILOG = """\
examples:
  gauntlet run scenarios/ramp.py --chaos chaos/timelines/replica-kill.toml
  gauntlet run ramp --broker postgres --users 200 --duration 2m
  gauntlet run ramp --stages "20s:100,40s:100,10s:0" --monkey --seed 7 --faults kill,latency
  gauntlet run fanout --processes 2 --slo "ws_delivery_latency: p(99)<250"
"""


def add_run_options(p: argparse.ArgumentParser, title: str = "") -> None:
    """Load, chaos and check options; shared with `gauntlet compare` (build_plan reads them)."""
    load = p.add_argument_group("load" + title)
    load.add_argument("--stages", metavar="STAGES", help='k6-style stages, e.g. "30s:100,60s:100,30s:0"')
    load.add_argument("--users", type=int, metavar="N", help="hold N users (ramping up over the first 10s)")
    load.add_argument("--duration", metavar="DURATION",
                      help="run length: with --users, how long to hold them; otherwise cuts the stages short")
    load.add_argument("--processes", type=int, default=1, metavar="N", help="load-generator processes (default 1)")
    load.add_argument("--locust-args", default="", metavar="ARGS",
                      help='extra Locust arguments, e.g. "--publish-rate 20 --user-pool 50"')
    load.add_argument("--allow-remote", action="store_true", help="allow load to a non-loopback host")
    chaos = p.add_argument_group("chaos" + title)
    chaos.add_argument("--chaos", metavar="TIMELINE", help="timeline file or name (chaos/timelines/*.toml)")
    chaos.add_argument("--monkey", action="store_true", help="random faults from a seed instead of a timeline")
    chaos.add_argument("--seed", type=int, help="seed for the monkey and the load (default: random, printed)")
    chaos.add_argument("--interval", default="10s..30s", metavar="MIN..MAX", help="monkey: time between faults")
    chaos.add_argument("--faults", default="kill,pause,latency", metavar="LIST", help="monkey: fault kinds")
    checks = p.add_argument_group("checks")
    checks.add_argument("--slo", action="append", default=[], metavar="EXPR",
                        help='latency/error target, repeatable, e.g. "http_req_duration: p(95)<500"')


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="one-shot run: stack up, load + chaos, checks, report, exit code",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", help="locustfile path, or a scenario name: ramp, spike, soak, fanout, reconnect_storm")
    add_stack_options(p)
    add_run_options(p)
    p.add_argument("--quiet", action="store_true", help="no live status line")
    p.set_defaults(run=run)


def build_plan(args: argparse.Namespace, argv: list[str]) -> RunPlan:
    """Check every input before anything starts; raise ValueError naming the bad one."""
    from chaos.monkey import MonkeyConfig, monkey_timeline, parse_range
    from chaos.target import Topology
    from chaos.timeline import check_timeline
    from reports.thresholds import parse as parse_threshold

    scenario = resolve_scenario(args.scenario)
    spec = spec_from_args(args, scenario.stem)
    spec.validate()
    preflight(spec)
    if args.processes < 1 or args.processes > 64:
        raise ValueError(f"--processes must be between 1 and 64, not {args.processes}")
    cut = parse_duration(args.duration) if args.duration else None
    if cut is not None and cut <= 0:
        raise ValueError(f"--duration must be more than 0, not {args.duration!r}")
    config = load_project_config(args.config)
    # [load] stages are the project's default shape; --stages or --users replace them.
    stages = args.stages or (config.load.get("stages") if args.users is None else None)
    shape = load_shape(scenario, stages, args.users, cut, option_prefix="--")
    stages, cut, duration = shape.stages, shape.cut, shape.duration

    seed = args.seed if args.seed is not None else random.randrange(1, 2**31)
    timeline, label = None, ""
    if args.chaos and args.monkey:
        raise ValueError("give --chaos TIMELINE or --monkey, not both")
    if args.chaos:
        timeline = check_timeline(args.chaos, spec, duration)
        label = args.chaos
    elif args.monkey:
        monkey = MonkeyConfig(seed=seed, faults=tuple(f.strip() for f in args.faults.split(",") if f.strip()),
                              interval=parse_range(args.interval), duration=duration)
        timeline = monkey_timeline(monkey, Topology.from_spec(spec))
        label = f"monkey seed={seed} faults={args.faults} interval={args.interval}"
    load_note = ""
    if timeline is not None and timeline.faults:
        shape, load_note = cover_recovery(shape, scenario, args.users, last_heal(timeline, spec),
                                          recovery_margin())
        stages, cut, duration = shape.stages, shape.cut, shape.duration

    slo = [*config.slo, *scenario_slo(scenario), *args.slo]
    for expr in slo:
        parse_threshold(expr)
    try:
        locust_args = shlex.split(args.locust_args)
    except ValueError as exc:
        raise ValueError(f"--locust-args: {exc}") from None
    # Last: the only check that starts a process (Locust's own parser, in a child).
    check_load_args(scenario, locust_args)
    return RunPlan(scenario=scenario, spec=spec, seed=seed, duration=duration, stages=stages, cut=cut,
                   timeline=timeline, timeline_label=label, slo=slo, processes=args.processes,
                   locust_args=locust_args, allow_remote=args.allow_remote, argv=argv, load_note=load_note)


def last_heal(timeline, spec) -> float:
    """When the timeline's last fault is due to be healed; an action (restart, rolling
    restart) counts for as long as it usually takes."""
    from chaos.target import Topology
    from chaos.timeline import fault_window

    topology = Topology.from_spec(spec)
    return max(fault_window(e.make(topology), e.at, e.duration, topology)[1] for e in timeline.faults)


def run(args: argparse.Namespace) -> int:
    plan = build_plan(args, ["gauntlet", *sys.argv[1:]])
    faults = len(plan.timeline.faults) if plan.timeline is not None else 0
    print(f"scenario {plan.scenario.name}: {format_duration(plan.duration)} of load, "
          f"{plan.spec.replicas} replicas, broker {plan.spec.broker}, {faults} faults, seed {plan.seed}", flush=True)
    if plan.load_note:
        print(plan.load_note, flush=True)
    try:
        outcome = execute(plan, progress=lambda m: print(m, flush=True), live=not args.quiet)
    except RunError as exc:
        print(f"gauntlet: run failed: {exc}", file=sys.stderr)
        return 1
    return outcome.exit_code
