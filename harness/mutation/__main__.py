"""`python -m harness.mutation` (or `make mutation`): the chaos suite's mutation score."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from harness.cli import OneLineParser
from harness.mutation.catalogue import Mutant, MutantError, check_applies, load
from harness.mutation.runner import (CAUGHT, DEFAULT_MUTANTS, DEFAULT_TESTS, MISSED, ROOT, Options, Outcome,
                                     SuiteResult, judge, rejudge, run_one, score_line, write_results)

DESCRIPTION = """\
How many realistic bugs of the reference SUT does the chaos suite catch?

Each mutant is a patch file against sut/ (mutants/*.patch: a plausible bug, with a
`Kind:` and a `Bug:` line above the diff). The unpatched SUT runs first and must pass
every selected test, or there is no score. Then, for each mutant: a fresh copy of the
project, the patch, the chaos tests (stopping at the first failure). A mutant is
caught when a test fails, with that test and its first line as the evidence; missed
when every test passed; not judged when the suite could not run (not counted).

Every patch is checked to apply before anything runs. Results go to
runs/<stamp>-mutation/ (--out): results.json, and per run its pytest log and junit file.
A mutant that every test passes costs a whole suite (about 6 minutes on 2 cores with
2 workers); a caught one stops at its first failing test.
Exit status: 0 when the baseline passed and the score is at least --min-score,
1 otherwise, 2 for bad input (a patch that does not apply), 130 when interrupted.
"""
EPILOG = """\
examples:
  make mutation
  make mutation MUTANTS=~/my-mutants
  python -m harness.mutation --only 03-,07- --workers 2
  python -m harness.mutation --tests "tests/chaos/test_chaos_replicas.py" --min-score 90
"""


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m harness.mutation", description=DESCRIPTION, epilog=EPILOG,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mutants", type=Path, default=DEFAULT_MUTANTS, metavar="DIR",
                   help="folder of *.patch files (default: the project's mutants/)")
    p.add_argument("--only", default="", metavar="NAMES",
                   help="comma-separated mutant names or name prefixes to run (default: all)")
    p.add_argument("--tests", default=" ".join(DEFAULT_TESTS), metavar="ARGS",
                   help="pytest arguments selecting the judging tests (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, metavar="N",
                   help="pytest-xdist workers per suite run; 0 runs one process (default: 2)")
    p.add_argument("--limit", type=float, default=1800.0, metavar="SECONDS",
                   help="time limit of one suite run; past it the mutant is not judged (default: 1800)")
    p.add_argument("--min-score", type=float, default=0.0, metavar="PERCENT",
                   help="exit 1 when fewer than this share of judged mutants is caught (default: 0)")
    p.add_argument("--out", type=Path, default=ROOT / "runs", metavar="DIR",
                   help="where the <stamp>-mutation folder goes (default: the project's runs/)")
    p.add_argument("--rejudge", type=Path, metavar="RUN_DIR",
                   help="judge a finished runs/<stamp>-mutation folder again from its junit files and "
                        "print its table (nothing runs)")
    p.add_argument("--skip-baseline", action="store_true",
                   help="do not run the unpatched SUT first (the score is then marked unverified)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.workers < 0 or args.limit <= 0 or not 0 <= args.min_score <= 100:
        parser.error("--workers must be >= 0, --limit > 0 and --min-score between 0 and 100")
    if args.rejudge is not None:
        return _rejudge(args.rejudge.expanduser(), args)
    try:
        tests = tuple(shlex.split(args.tests))
    except ValueError as exc:
        parser.error(f"--tests: {exc}")
    try:
        mutants = load(args.mutants.expanduser(), [o.strip() for o in args.only.split(",") if o.strip()])
        for mutant in mutants:
            why = check_applies(mutant, ROOT)
            if why:
                raise MutantError(f"{mutant.path}: does not apply to this checkout: {why}")
    except MutantError as exc:
        print(f"mutation: error: {exc}", file=sys.stderr)
        return 2
    log_dir = args.out.expanduser() / f"{time.strftime('%Y%m%d-%H%M%S')}-mutation"
    log_dir.mkdir(parents=True, exist_ok=True)
    opts = Options(tests=tests, workers=args.workers, limit_s=args.limit)
    try:
        return _run(mutants, opts, log_dir, args)
    except KeyboardInterrupt:
        print(f"interrupted; what finished is in {log_dir}", file=sys.stderr)
        return 130


def _run(mutants, opts: Options, log_dir: Path, args) -> int:
    print(f"mutation: {len(mutants)} mutants from {args.mutants}; tests: {' '.join(opts.tests)}; logs in {log_dir}")
    if args.skip_baseline:
        baseline = SuiteResult(None, 0, (), 0.0, "")
        print("baseline: skipped (the score is unverified: a suite that fails the correct SUT catches everything)")
    else:
        print("baseline: the unpatched SUT ...", flush=True)
        baseline = run_one(None, opts, log_dir)
        if not baseline.passed:
            first = baseline.failures[0] if baseline.failures else None
            why = f"{first.test}: {first.figure}" if first else f"pytest exited {baseline.exit_code}, {baseline.tests} tests"
            print(f"baseline FAILED ({why}); no score: see {baseline.log}")
            write_results(log_dir, baseline, [], opts)
            return 1
        print(f"baseline: passed, {baseline.tests} tests in {baseline.seconds / 60:.1f} min")
    outcomes: list[Outcome] = []
    for n, mutant in enumerate(mutants, 1):
        print(f"[{n}/{len(mutants)}] {mutant.name} ({mutant.kind}) ...", flush=True)
        outcome = judge(mutant, run_one(mutant, opts, log_dir))
        outcomes.append(outcome)
        detail = {CAUGHT: f"caught by {outcome.caught_by}: {outcome.figure}",
                  MISSED: f"MISSED: all {outcome.tests} tests passed"}.get(outcome.result, f"not judged: {outcome.reason}")
        print(f"    {detail} ({outcome.seconds:.0f} s)", flush=True)
        write_results(log_dir, baseline, outcomes, opts)
    print()
    print(format_table(outcomes))
    line = score_line(outcomes)
    if args.skip_baseline:
        line += " (unverified: baseline skipped)"
    else:
        line += f"; the unpatched SUT passed all {baseline.tests} tests in {baseline.seconds / 60:.1f} min"
    print(line)
    print(f"results: {write_results(log_dir, baseline, outcomes, opts)}")
    judged = [o for o in outcomes if o.result in (CAUGHT, MISSED)]
    share = 100 * sum(o.result == CAUGHT for o in judged) / len(judged) if judged else 0.0
    return 0 if judged and share >= args.min_score and not args.skip_baseline else 1


def _rejudge(log_dir: Path, args) -> int:
    try:
        doc = json.loads((log_dir / "results.json").read_text())
    except (OSError, ValueError) as exc:
        print(f"mutation: error: {log_dir}: no readable results.json ({exc})", file=sys.stderr)
        return 2
    outcomes = [judge(Mutant(row["mutant"], Path(), row["kind"], row["bug"], ()), rejudge(log_dir, row))
                for row in doc["mutants"]]
    base = doc["baseline"]
    baseline = SuiteResult(0 if base["passed"] else 1, base["tests"], (), base["seconds"], "")
    opts = Options(tests=tuple(doc.get("tests", DEFAULT_TESTS)), workers=doc.get("workers", 2))
    print(format_table(outcomes))
    line = score_line(outcomes)
    print(line + (f"; the unpatched SUT passed all {baseline.tests} tests in {baseline.seconds / 60:.1f} min"
                  if baseline.passed else "; the baseline did not pass: no score"))
    print(f"results: {write_results(log_dir, baseline, outcomes, opts)}")
    judged = [o for o in outcomes if o.result in (CAUGHT, MISSED)]
    share = 100 * sum(o.result == CAUGHT for o in judged) / len(judged) if judged else 0.0
    return 0 if baseline.passed and judged and share >= args.min_score else 1


def format_table(outcomes: list[Outcome]) -> str:
    """A Markdown table (it reads in a terminal and pastes into the docs)."""
    rows = ["| mutant | kind | result | caught by | what the test saw |", "|---|---|---|---|---|"]
    for o in outcomes:
        by = o.caught_by.split("::", 1)[-1] if o.caught_by else ""
        seen = (o.figure or o.reason or "").replace("|", "\\|")
        rows.append(f"| {o.mutant} | {o.kind} | {o.result} | {by} | {seen[:120]} |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
