"""`gauntlet compare`: the same scenario and timeline against each broker, one report.

Three forms, told apart by their arguments:

    gauntlet compare --brokers postgres,redis,redis-streams SCENARIO [--chaos T] [--repeat K] ...
    gauntlet compare COMPARISON_DIR            rebuild compare.html of a comparison
    gauntlet compare RUN_DIR RUN_DIR ... [-o FILE]   finished runs side by side (reports/cli.py)
"""

from __future__ import annotations

import argparse
import random
import webbrowser
from collections.abc import Sequence
from pathlib import Path

from harness.commands.run import add_run_options, build_plan
from harness.commands.up import add_stack_options
from harness.compare import CompareJob, execute_comparison, summary_lines
from harness.rate_search import RatePlan
from harness.spec import REFERENCE_BROKERS
from common.units import format_duration, parse_duration
from reports.compare_plan import PLAN_FILE, RateTarget
from scenarios.catalogue import resolve_scenario

MAX_REPEATS = 10

DESCRIPTION = """\
Run one scenario (and chaos timeline) against each broker with the same seed, repeats
interleaved (A B C A B C) so machine noise hits all alike, then write one comparison
report: which broker to use and what each loses under the faults, a table (throughput,
publish and delivery latency p50/p95/p99, loss, recovery per fault, verdicts per
target), delivery latency CDFs and latency over time per broker, and optionally the
highest fan-out rate each broker sustains (--max-rate-search).

Everything goes to runs/<stamp>-compare-<scenario>/: compare.json (what ran),
figures.json (the table's numbers), compare.html, and the run directories.
Exit status: 0 when at least one broker passed every check, 1 when every broker failed
one, 2 for bad input, 3 when none failed but none passed either (a check could not be
judged), 130 when interrupted (the report still covers what ran).
"""
EPILOG = f"""\
examples:
  gauntlet compare --brokers postgres,redis,redis-streams scenarios/ramp.py \\
      --chaos chaos/timelines/redis-outage.toml
  gauntlet compare --brokers redis,redis-streams ramp --stages "10s:50,40s:50" --repeat 3 --seed 7
  gauntlet compare --brokers postgres,redis fanout --max-rate-search --rate-budget 10m
  gauntlet compare runs/20261123-120000-compare-ramp        rebuild its compare.html
  gauntlet compare RUN_DIR RUN_DIR -o compare.html         finished runs side by side

brokers of the reference SUT: {", ".join(REFERENCE_BROKERS)}
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line through the CLI's error path
        raise ValueError(message)


def add_parser(sub) -> None:
    # Parsed here, not by the top-level parser: the run-directory form takes another
    # set of options (reports/cli.py), so the arguments are passed through as they are.
    p = sub.add_parser("compare", help="the same scenario against several brokers, one comparison report",
                       add_help=False, prefix_chars="\0")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(run=run)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gauntlet compare", description=DESCRIPTION, epilog=EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", nargs="?", help="locustfile path, or a scenario name: ramp, spike, soak, fanout, ...")
    p.add_argument("--brokers", metavar="LIST", help="brokers to compare, comma separated, e.g. postgres,redis")
    p.add_argument("--repeat", default="1", metavar="K",
                   help=f"runs per broker, interleaved A B C A B C (default 1, at most {MAX_REPEATS})")
    add_stack_options(p)
    for action in p._actions:  # one broker per run comes from --brokers
        if action.dest == "broker":
            action.help, action.default = argparse.SUPPRESS, None
    add_run_options(p, " (as for gauntlet run; the same for every broker)")
    rate = p.add_argument_group("fan-out rate search (fanout scenario, broadcasts, stepped publish rate)")
    rate.add_argument("--max-rate-search", action="store_true",
                      help="also find the highest publish rate each broker sustains within the rate targets")
    rate.add_argument("--rate-budget", default="15m", metavar="DURATION", help="time for the whole search (15m)")
    rate.add_argument("--rate-steps", type=int, default=6, metavar="N", help="steps per broker at most (6)")
    rate.add_argument("--rate-step", default="20s", metavar="DURATION", help="hold per step, after a 5s ramp (20s)")
    rate.add_argument("--rate-start", type=float, default=100.0, metavar="MSG_S", help="first rate (100 msg/s)")
    rate.add_argument("--rate-subscribers", type=int, default=40, metavar="N", help="subscribers per step (40)")
    rate.add_argument("--rate-p99", default="250ms", metavar="DURATION",
                      help="a step breaks when delivery p99 reaches this (250ms), or anything is lost")
    p.add_argument("--open", action="store_true", help="open the report in a browser when done")
    p.add_argument("--quiet", action="store_true", help="no live status line")
    return p


def run(args: argparse.Namespace) -> int:
    argv = list(args.args)
    if _run_dirs_form(argv):
        from reports.cli import compare_main

        return compare_main(argv)
    rebuilt = _rebuild_form(argv)
    if rebuilt is not None:
        return rebuilt
    try:
        ns = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help
        return int(exc.code) if isinstance(exc.code, int) else 2
    job = build_job(ns, ["gauntlet", "compare", *argv])
    runs = len(job.brokers) * job.repeats
    print(f"{Path(job.scenario).name} against {', '.join(job.brokers)}: {runs} runs of "
          f"{format_duration(job.duration)} (interleaved), seed {job.seed}"
          + (f"; then a rate search of at most {format_duration(job.rate.max_seconds)}" if job.rate else ""),
          flush=True)
    outcome = execute_comparison(job, progress=lambda m: print(m, flush=True), live=not ns.quiet)
    if ns.open and outcome.report is not None:
        webbrowser.open(outcome.report.resolve().as_uri())
    return outcome.exit_code


def build_job(ns: argparse.Namespace, argv: Sequence[str]) -> CompareJob:
    """Check every input before anything starts; ValueError names the bad one."""
    if ns.broker is not None:
        raise ValueError("give the brokers with --brokers A,B,... (gauntlet compare runs one per broker)")
    brokers = parse_brokers(ns.brokers)
    repeats = parse_repeats(ns.repeat)
    if not ns.scenario:
        raise ValueError("give a SCENARIO to run against each broker: a locustfile path or a name such as ramp")
    seed = ns.seed if ns.seed is not None else random.randrange(1, 2**31)
    plans = {}
    for broker in brokers:
        per = argparse.Namespace(**{**vars(ns), "broker": broker, "seed": seed})
        plans[broker] = build_plan(per, list(argv))
    rate_plan, rate_runs = None, None
    if ns.max_rate_search:
        rate_plan = RatePlan(
            start_rate=ns.rate_start, max_steps=ns.rate_steps, max_seconds=_duration(ns, "rate_budget"),
            subscribers=ns.rate_subscribers, hold_s=_duration(ns, "rate_step"),
            target=RateTarget(delivery_p99_ms=_duration(ns, "rate_p99") * 1000.0))
        rate_plan.validate()
        rate_runs = {}
        fanout = str(resolve_scenario("fanout"))
        for broker in brokers:
            per = argparse.Namespace(**{**vars(ns), "broker": broker, "seed": seed, "scenario": fanout,
                                        "stages": rate_plan.stages(rate_plan.start_rate), "users": None,
                                        "duration": None, "chaos": None, "monkey": False, "locust_args": ""})
            rate_runs[broker] = build_plan(per, list(argv))
    return CompareJob(brokers=brokers, repeats=repeats, seed=seed, runs=plans, runs_dir=Path(ns.runs_dir),
                      rate=rate_plan, rate_runs=rate_runs, argv=tuple(argv))


def _duration(ns: argparse.Namespace, dest: str) -> float:
    try:
        return parse_duration(getattr(ns, dest))
    except ValueError as exc:
        raise ValueError(f"--{dest.replace('_', '-')}: {exc}") from None


def parse_brokers(text: str | None) -> tuple[str, ...]:
    if not text:
        raise ValueError("give the brokers to compare with --brokers, e.g. --brokers postgres,redis,redis-streams "
                         "(or two or more run directories to compare finished runs)")
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(names) < 2:
        raise ValueError(f"--brokers needs at least two brokers to compare, got {', '.join(names) or 'none'}")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"--brokers names {', '.join(twice)} more than once")
    return tuple(names)


def parse_repeats(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"--repeat must be a whole number, not {text!r}") from None
    if not 1 <= value <= MAX_REPEATS:
        raise ValueError(f"--repeat must be between 1 and {MAX_REPEATS}, not {value}")
    return value


_RUN_DIRS_VALUE_OPTIONS = {"-o", "--output", "--label", "--slo"}


def _run_dirs_form(argv: list[str]) -> bool:
    """Two or more existing directories and no --brokers: compare finished runs."""
    if any(a == "--brokers" or a.startswith("--brokers=") for a in argv):
        return False
    positional, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in _RUN_DIRS_VALUE_OPTIONS:
            skip = True
        elif not a.startswith("-"):
            positional.append(a)
    return len(positional) >= 2 and all(Path(p).is_dir() for p in positional)


def _rebuild_form(argv: list[str]) -> int | None:
    """`gauntlet compare DIR` for a comparison directory: rebuild its report."""
    if len(argv) != 1 or not (Path(argv[0]) / PLAN_FILE).is_file():
        return None
    from reports.compare_html import build_compare_report
    from reports.records import RecordError

    try:
        comparison, path = build_compare_report(argv[0])
    except RecordError as exc:
        raise ValueError(str(exc)) from None
    for line in summary_lines(comparison):
        print(line)
    print(f"report: {path}")
    return 0
