"""`python -m scenarios.check LOCUSTFILE [locust arguments]`: parse a load generator's
command line exactly as Locust will, without running anything.

`gauntlet run` calls this before it brings a stack up, so a bad `--locust-args` (an
unknown option, a rate out of range, bad stages) is a one-line usage error with exit
code 2, not a failure after the stack is up. It loads the locustfile (its defaults and
our arguments), builds Locust's own parser, parses, and runs the same typed checks as
the plugin. Exit 0 and no output when the command line is good; else one line
`gauntlet: error: ...` on stderr and exit 2.
"""

from __future__ import annotations

import sys


class _Refused(Exception):
    pass


def main(argv: list[str]) -> int:
    if not argv:
        sys.stderr.write("usage: python -m scenarios.check LOCUSTFILE [locust arguments]\n")
        return 2
    locustfile, args = argv[0], argv[1:]
    try:
        from locust.argument_parser import get_parser
        from locust.util.load_locustfile import load_locustfile

        load_locustfile(locustfile)  # the scenario's install(): its defaults and our arguments
        parser = get_parser(default_config_files=[])

        def refuse(message: str) -> None:
            raise _Refused(message)

        parser.error = refuse  # type: ignore[method-assign]  # one line instead of usage + exit
        options = parser.parse_args(["-f", locustfile, *args])
        from scenarios.settings import SettingsError, from_options

        if not hasattr(options, "stages"):
            return 0  # not a gauntlet scenario: Locust's own options parsed, nothing more to check
        try:
            from_options(options)
        except SettingsError as exc:
            raise _Refused(str(exc)) from None
    except _Refused as exc:
        sys.stderr.write(f"gauntlet: error: {' '.join(str(exc).split())}\n")
        return 2
    except SystemExit as exc:  # argparse's exit for --help/--version, or a locustfile that exits
        code = exc.code if isinstance(exc.code, int) else 2
        if code:
            sys.stderr.write(f"gauntlet: error: {locustfile} exited with {exc.code!r} while loading\n")
        return 2 if code else 0
    except Exception as exc:  # a locustfile that cannot be imported
        sys.stderr.write(f"gauntlet: error: cannot load {locustfile}: {type(exc).__name__}: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
