"""The `gauntlet` command. Every subcommand has --help; user mistakes get one clear line."""

from __future__ import annotations

import argparse
import sys

from harness.commands import capacity, chaos, compare, down, report, run, smoke, status, up
from harness.config import ConfigError
from common.control import ControlError
from harness.docker.daemon import DockerUnavailable
from harness.process import StartError
from harness.servers.base import MissingServerError
from harness.spec import SpecError
from common.state import StateError

DESCRIPTION = """\
gauntlet: load and chaos verification for multi-replica realtime web stacks.

Bring up replicas of your app behind a load balancer with Postgres and Redis, put load
and faults on them, and check that every notification still reaches every subscriber
on every replica within your latency targets."""

EPILOG = """\
typical session:
  gauntlet up --replicas 3 --broker redis     # terminal 1: the stack, until Ctrl-C
  gauntlet status                             # terminal 2
  gauntlet smoke                              # cross-instance delivery table
  gauntlet down
"""

COMMANDS = [up, status, down, smoke, chaos, run, report, compare, capacity]
USER_ERRORS = (ConfigError, SpecError, StateError, ControlError, MissingServerError, DockerUnavailable, ValueError,
               KeyError)


class OneLineParser(argparse.ArgumentParser):
    """A usage error is one line naming the bad option and exit code 2 (argparse would
    print the whole usage block first). Subcommand parsers inherit this class."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="gauntlet", description=DESCRIPTION, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except StartError as exc:
        print(f"gauntlet: start failed: {exc}", file=sys.stderr)
        return 1
    except USER_ERRORS as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"gauntlet: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
