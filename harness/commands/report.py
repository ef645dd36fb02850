"""`gauntlet report RUN_DIR`: (re)build the checks and the HTML report of a run."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    # The reports package owns its options; everything after `report` is passed through.
    p = sub.add_parser("report", help="(re)build summary.json, junit.xml and report.html of a run directory",
                       add_help=False, prefix_chars="\0")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from reports.cli import report_main

    return report_main(args.args)
