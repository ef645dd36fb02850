"""`gauntlet capacity`: step the load per replica count until a check breaks."""

from __future__ import annotations

import argparse
import random
import sys
import webbrowser
from pathlib import Path

from harness.capacity import RATE, USERS, CapacityJob, execute_capacity
from harness.commands.run import build_plan
from harness.commands.up import add_stack_options
from harness.rate_search import RatePlan
from harness.spec import MAX_REPLICAS
from common.units import format_duration, parse_duration
from scenarios.catalogue import resolve_scenario

DESCRIPTION = """\
How much load does the stack hold, and does a replica more add capacity?

For each replica count, run the scenario at a load level, check it exactly as
`gauntlet run` does (the default targets p95 < 500 ms, p99 < 1 s, errors < 1 %, the
scenario's and gauntlet.toml's targets, --slo, delivery and order), and step the
level: double it while every check passes, then bisect between the last level that
held and the first that broke. The knee is the highest level that held. Replica counts
are interleaved (1 2 3 1 2 3) so machine noise hits all alike, on one time budget.

The load stepped (--load):
  users   N users of the scenario's own mix (as `gauntlet run --users N`): for the
          ramp scenario 80 % WebSocket subscribers, 10 % publishers, 10 % readers
  rate    the fan-out publish rate (broadcasts to --subscribers sockets, publishers
          in proportion), as `gauntlet compare --max-rate-search` steps it

The report (capacity.html) gives the knee per replica count, the scaling efficiency
(capacity at N / (N x capacity at 1)) as a plot and a table, and what saturated past
each knee, from the resource samples of that step: a component at its limit, or the
machine's cores and who used them. On one machine the replicas share its cores with
the load generator, nginx, Postgres and Redis, so the curve flattens once they are
busy; the report says so rather than blaming the app. A step whose load generator
could not keep up ends that count's search: capacity is then at least the last level
that held.

Everything goes to runs/<stamp>-capacity-<scenario>/: capacity.json (every step as it
finishes), capacity.html, steps.log and one run directory per step.
Exit status: 0 when some level held, 1 when none did, 2 for bad input, 130 when
interrupted (the report still covers what ran).
"""
EPILOG = """\
examples:
  gauntlet capacity ramp --replicas 1,2,3
  gauntlet capacity ramp --replicas 1,2,3 --start 100 --max 4000 --budget 30m --broker postgres
  gauntlet capacity fanout --load rate --replicas 1,3 --start 50 --subscribers 100
  gauntlet capacity ramp --replicas 1,2 --slo "ws_delivery_latency: p(99)<250" --hold 30s
  gauntlet capacity runs/20261202-120000-capacity-ramp        rebuild its capacity.html

a step costs its ramp + hold + about 30 s (stack up, drain, checks); a count's search
takes at most --steps steps, all counts together at most --budget.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line through the CLI's error path
        raise ValueError(message)


def add_parser(sub) -> None:
    p = sub.add_parser("capacity", help="step the load per replica count until a check breaks; scaling report",
                       add_help=False, prefix_chars="\0")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(run=run)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gauntlet capacity", description=DESCRIPTION, epilog=EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", help="locustfile path or scenario name (ramp, fanout, ...); or a capacity directory")
    add_stack_options(p)
    for action in p._actions:  # the replica counts are a list here
        if action.dest == "replicas":
            action.type, action.default, action.metavar = str, "1,2,3", "LIST"
            action.help = "replica counts to measure, comma separated (default 1,2,3)"
    search = p.add_argument_group("the search")
    search.add_argument("--load", default=USERS, choices=(USERS, RATE), help="what to step (default users)")
    search.add_argument("--start", type=float, metavar="LEVEL",
                        help="first level: users (default 50) or msg/s (default 50)")
    search.add_argument("--max", type=float, metavar="LEVEL", help="highest level to try (default 20000)")
    search.add_argument("--resolution", type=float, default=1.25, metavar="FACTOR",
                        help="stop when the first level that broke is within this factor of the last that held (1.25)")
    search.add_argument("--steps", type=int, default=6, metavar="N", help="steps per replica count at most (6)")
    search.add_argument("--budget", default="30m", metavar="DURATION", help="time for the whole search (30m)")
    search.add_argument("--ramp", default="10s", metavar="DURATION", help="ramp of each step (10s)")
    search.add_argument("--hold", default="20s", metavar="DURATION", help="hold of each step after the ramp (20s)")
    search.add_argument("--subscribers", type=int, default=40, metavar="N",
                        help="--load rate: subscribers per step (40)")
    load = p.add_argument_group("load and checks (as for gauntlet run)")
    load.add_argument("--processes", type=int, default=1, metavar="N", help="load-generator processes (default 1)")
    load.add_argument("--locust-args", default="", metavar="ARGS", help='extra Locust arguments, e.g. "--publish-rate 2"')
    load.add_argument("--seed", type=int, help="seed of every step (default: random, printed)")
    load.add_argument("--slo", action="append", default=[], metavar="EXPR",
                      help='an extra target, repeatable, e.g. "ws_delivery_latency: p(99)<250"')
    p.add_argument("--open", action="store_true", help="open the report in a browser when done")
    return p


def run(args: argparse.Namespace) -> int:
    argv = list(args.args)
    if len(argv) == 1 and (Path(argv[0]) / "capacity.json").is_file():
        return _rebuild(Path(argv[0]))
    try:
        ns = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help
        return int(exc.code) if isinstance(exc.code, int) else 2
    job = build_job(ns, ["gauntlet", "capacity", *argv])
    print(f"{job.scenario.name}: {job.load} stepped from {job.search.start_rate:g} on "
          f"{', '.join(map(str, job.replicas))} replicas, at most {job.search.max_steps} steps each, "
          f"{format_duration(job.search.max_seconds)} in all; seed {job.seed}", flush=True)
    outcome = execute_capacity(job, progress=lambda m: print(m, flush=True))
    if ns.open and outcome.report is not None:
        webbrowser.open(outcome.report.resolve().as_uri())
    return outcome.exit_code


def parse_replicas(text: str) -> tuple[int, ...]:
    try:
        counts = [int(p) for p in str(text).split(",") if p.strip()]
    except ValueError:
        raise ValueError(f"--replicas takes whole numbers, comma separated (e.g. 1,2,3), not {text!r}") from None
    if not counts:
        raise ValueError("--replicas needs at least one replica count, e.g. 1,2,3")
    bad = [n for n in counts if not 1 <= n <= MAX_REPLICAS]
    if bad:
        raise ValueError(f"--replicas: each count must be between 1 and {MAX_REPLICAS}, not {bad[0]}")
    if len(set(counts)) != len(counts):
        raise ValueError(f"--replicas names a count more than once: {text}")
    return tuple(sorted(counts))


def _duration(ns: argparse.Namespace, dest: str, least: float) -> float:
    try:
        value = parse_duration(getattr(ns, dest))
    except ValueError as exc:
        raise ValueError(f"--{dest}: {exc}") from None
    if value < least:
        raise ValueError(f"--{dest} must be at least {format_duration(least)}")
    return value


def build_job(ns: argparse.Namespace, argv: list[str]) -> CapacityJob:
    """Check every input before anything starts; ValueError names the bad one."""
    replicas = parse_replicas(ns.replicas)
    ramp, hold = _duration(ns, "ramp", 1.0), _duration(ns, "hold", 3.0)
    budget = _duration(ns, "budget", 10.0)
    start = ns.start if ns.start is not None else 50.0
    top = ns.max if ns.max is not None else 20_000.0
    if not 0 < start <= top:
        raise ValueError(f"--start must be more than 0 and at most --max ({top:g}), not {start:g}")
    if ns.load == USERS and top > 100_000:
        raise ValueError("--max: at most 100000 users")
    if not 1.01 <= ns.resolution <= 4:
        raise ValueError(f"--resolution must be between 1.01 and 4, not {ns.resolution:g}")
    if not 1 <= ns.steps <= 50:
        raise ValueError(f"--steps must be between 1 and 50, not {ns.steps}")
    if not 1 <= ns.subscribers <= 20_000:
        raise ValueError(f"--subscribers must be between 1 and 20000, not {ns.subscribers}")
    seed = ns.seed if ns.seed is not None else random.randrange(1, 2**31)
    scenario = str(resolve_scenario(ns.scenario))
    rate = RatePlan(subscribers=ns.subscribers, ramp_s=ramp, hold_s=hold) if ns.load == RATE else None
    plans = {}
    for n in replicas:
        first = rate.stages(start) if rate else f"{ramp:g}s:{max(1, round(start))},{hold:g}s:{max(1, round(start))}"
        per = argparse.Namespace(**{**vars(ns), "replicas": n, "seed": seed, "scenario": scenario, "stages": first,
                                    "users": None, "duration": None, "chaos": None, "monkey": False,
                                    "interval": "10s..30s", "faults": "kill", "allow_remote": False})
        plans[n] = build_plan(per, list(argv))
    search = RatePlan(start_rate=start, max_rate=top, min_rate=1.0, resolution=ns.resolution, max_steps=ns.steps,
                      max_seconds=budget)
    return CapacityJob(load=ns.load, replicas=replicas, runs=plans, search=search, runs_dir=Path(ns.runs_dir),
                       seed=seed, ramp_s=ramp, hold_s=hold, rate=rate, argv=tuple(argv))


def _rebuild(directory: Path) -> int:
    from reports.capacity import summary_lines
    from reports.capacity_html import build_capacity_report
    from reports.capacity_plan import read_plan
    from reports.records import RecordError

    try:
        path = build_capacity_report(directory)
        plan = read_plan(directory)
    except RecordError as exc:
        raise ValueError(str(exc)) from None
    for line in summary_lines(plan):
        print(line)
    print(f"report: {path}", file=sys.stdout)
    return 0
