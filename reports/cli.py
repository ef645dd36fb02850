"""`gauntlet report RUN_DIR`: (re)build a run's verdicts and HTML report.

Wired into the `gauntlet` command as `report`; `report_main(argv)` returns the exit
code: 0 when every check passed, 1 when one failed, 2 for a usage error (no such run
directory, a bad threshold expression; reported without a traceback), 3 when no check
failed but one could not be judged (verdict unknown: e.g. nothing was published).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import textwrap
import webbrowser
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from common.units import parse_duration
from reports.delivery import DeliveryOptions
from reports.metrics import METRICS
from reports.records import RecordError
from reports.thresholds import DEFAULT_SLO, ThresholdError, resolve
from reports.check import Verdict
from reports.verdict import RunVerdict

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNKNOWN = 0, 1, 2, 3

_DESCRIPTION = """\
Check a run and write its report: summary.json, junit.xml, report.html and csv/ in
the run directory. Nothing but the run directory is needed, so a run can be
re-checked later with other targets.

Checks: records (is there a history), faults (did each fault inject and heal),
delivery (lost / duplicated / unexpected / misrouted messages), recovery (did
delivery come back after each heal), replicas (did a replica exit when no fault
asked for it), and one check per latency target (--slo).
"""

_EPILOG = """\
latency targets (k6 threshold syntax, one expression per --slo):
  METRIC[{TAG:VALUE,...}]: AGG OP NUMBER[UNIT], ...
    AGG: p(N) avg min max med (trends, ms) | rate (rates) | count (all)
    OP:  < <= > >= == !=      UNIT: ms or s for durations, % for rates

  --slo 'http_req_duration{name:POST /api/notifications}: p(95)<500, p(99)<1s'
  --slo 'ws_delivery_latency{path:cross}: p(99)<250'
  --slo 'delivery_lost_eventual: count==0'   --slo 'http_req_failed: rate<1%'

  defaults (replaced per metric, tags and aggregation by the run's own targets
  and then by --slo; --no-default-slo drops them):
    """ + "\n    ".join(DEFAULT_SLO) + """

metrics:
""" + textwrap.fill(", ".join(METRICS), width=78, initial_indent="  ", subsequent_indent="  ") + """
  (docs/reports.md describes each metric and its tags)

exit status: 0 every check passed, 1 a check failed, 2 usage error,
  3 no check failed but one could not be judged (unknown: a run that checked nothing
  must not pass a CI gate).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gauntlet report", description=_DESCRIPTION, epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, e.g. runs/20261123-120000-ramp")
    parser.add_argument("--slo", metavar="EXPR", action="append", default=[],
                        help="a latency target; repeat for more (see below)")
    parser.add_argument("--no-default-slo", action="store_true",
                        help="do not apply the default targets (p95<500ms, p99<1s, errors<1%%)")
    parser.add_argument("--late-after", metavar="DURATION", default="1s",
                        help="a live delivery slower than this counts as late (default 1s)")
    parser.add_argument("--grace", metavar="DURATION", default="1s",
                        help="fan-out time allowed after a publish is acknowledged before a live "
                             "subscriber is owed it (default 1s)")
    parser.add_argument("--heal-window", metavar="DURATION", default="30s",
                        help="the 'after heal' phase after each fault, and the recovery deadline (default 30s)")
    parser.add_argument("--open", action="store_true", help="open report.html in a browser when done")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the report path")
    return parser


class _UsageError(Exception):
    pass


def report_main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # argparse printed its message (or --help)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    try:
        options = _options(args)
        run_dir = _run_dir(args.run_dir)
        resolve(args.slo, use_defaults=False, labels=("--slo",))  # a typo fails before any work
        # Imported here: matplotlib's start-up is only paid when a report is built.
        from reports.html import report_run

        verdict, path = report_run(run_dir, args.slo, use_default_slo=not args.no_default_slo, options=options)
    except (_UsageError, RecordError) as exc:
        print(f"gauntlet report: error: {exc}", file=err)
        return EXIT_USAGE
    except ThresholdError as exc:
        print(f"gauntlet report: error: {exc}", file=err)
        return EXIT_USAGE
    if not args.quiet:
        print_verdicts(verdict, out)
    print(f"report: {path}", file=out)
    if args.open:
        webbrowser.open(path.resolve().as_uri())
    return verdict.exit_code


def print_verdicts(verdict: RunVerdict, out: TextIO) -> None:
    """One line per check, worst first within the run's own order."""
    width = shutil.get_terminal_size((100, 20)).columns
    name_w = min(48, max((len(c.name) for c in verdict.checks), default=8))
    for check in verdict.checks:
        mark = {Verdict.PASS: "PASS", Verdict.FAIL: "FAIL", Verdict.UNKNOWN: "????"}[check.verdict]
        line = f"{mark}  {check.name:<{name_w}}  {check.summary}"
        if len(line) > width:
            line = line[: max(20, width - 1)] + "…"
        print(line, file=out)
        for extra in _check_lines(check):
            print(extra[: max(20, width - 1)], file=out)
    order_line = _order_line(verdict)
    if order_line:
        print(textwrap.fill(order_line, width=max(40, width - 1), subsequent_indent="       "), file=out)
    if verdict.measurement is not None:
        print(textwrap.fill(verdict.measurement.headline(), width=max(40, width - 1), subsequent_indent="       "),
              file=out)
    for note in verdict.notes:
        print(f"note: {note}", file=out)
    failed = len(verdict.failed)
    print(f"verdict: {verdict.verdict.value.upper()}"
          + (f" ({failed} check{'s' if failed != 1 else ''} failed)" if failed else ""), file=out)
    print(f"summary: {verdict.summary_path}\njunit: {verdict.junit_path}", file=out)


def _check_lines(check) -> list[str]:
    """Below a failed replicas check: each unasked exit and the last lines of its log."""
    if check.name != "replicas" or check.verdict is not Verdict.FAIL:
        return []
    lines = []
    for e in check.details.get("exits", []):
        if e.get("asked"):
            continue
        lines.append(f"      {e['replica']} at {e['at_s']:.1f} s, {e['how']}; its log ends:")
        lines.extend(f"        | {text}" for text in (e.get("log_tail") or ["(empty)"])[-3:])
    return lines


def _order_line(verdict: RunVerdict) -> str:
    """Which orders the run was checked against (from the delivery check), or ''."""
    from reports.order import describe

    for check in verdict.checks:
        if check.name == "delivery" and check.details.get("order"):
            return describe(check.details["order"])
    return ""


def _options(args: argparse.Namespace) -> DeliveryOptions:
    values = {}
    for flag, attr in (("late_after", "late_after_s"), ("grace", "grace_s"), ("heal_window", "heal_window_s")):
        try:
            values[attr] = parse_duration(getattr(args, flag))
        except ValueError as exc:
            raise _UsageError(f"--{flag.replace('_', '-')}: {exc}") from None
    return DeliveryOptions(**values)


def _run_dir(text: str) -> Path:
    path = Path(text)
    if not path.exists():
        hint = ""
        runs = Path("runs")
        if runs.is_dir():
            recent = sorted((p for p in runs.iterdir() if p.is_dir()), key=lambda p: p.name)[-3:]
            if recent:
                hint = "; recent runs: " + ", ".join(str(p) for p in recent)
        raise _UsageError(f"run directory {path} does not exist{hint}")
    if not path.is_dir():
        raise _UsageError(f"{path} is not a directory; give the run directory (runs/<id>/)")
    if not any(path.iterdir()):
        raise _UsageError(f"run directory {path} is empty: the run wrote nothing (did it start?)")
    return path


def compare_main(argv: Sequence[str] | None = None, *, out: TextIO | None = None,
                 err: TextIO | None = None) -> int:
    """`gauntlet compare RUN_DIR RUN_DIR ... [-o FILE]`: one page, the runs side by side."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = argparse.ArgumentParser(
        prog="gauntlet compare", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compare runs of one scenario (e.g. one per broker) on one self-contained page: "
                    "verdicts, latency targets, delivery counts, recovery per fault, overlaid plots. "
                    "Runs are labelled by their broker unless --label is given.",
        epilog="example: gauntlet compare runs/*-ramp-redis runs/*-ramp-postgres -o runs/compare.html",
    )
    parser.add_argument("run_dirs", metavar="RUN_DIR", nargs="+", help="two or more run directories")
    parser.add_argument("-o", "--output", metavar="FILE", default="compare.html",
                        help="where to write the page (default ./compare.html)")
    parser.add_argument("--label", action="append", default=[], help="a label per run, in order")
    parser.add_argument("--slo", metavar="EXPR", action="append", default=[], help="a latency target, as in report")
    parser.add_argument("--no-default-slo", action="store_true", help="do not apply the default targets")
    parser.add_argument("--open", action="store_true", help="open the page in a browser when done")
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    try:
        if len(args.run_dirs) < 2:
            raise _UsageError("give at least two run directories to compare")
        dirs = [_run_dir(d) for d in args.run_dirs]
        resolve(args.slo, use_defaults=False, labels=("--slo",))
        from reports.compare import build_comparison

        path = build_comparison(dirs, args.output, args.slo, labels=args.label,
                                use_default_slo=not args.no_default_slo)
    except (_UsageError, RecordError, ThresholdError) as exc:
        print(f"gauntlet compare: error: {exc}", file=err)
        return EXIT_USAGE
    print(f"comparison: {path}", file=out)
    if args.open:
        webbrowser.open(path.resolve().as_uri())
    return EXIT_OK


def main() -> None:  # pragma: no cover - `python -m reports.cli`
    sys.exit(report_main())


if __name__ == "__main__":  # pragma: no cover
    main()
