"""`python -m scenarios <scenario> [locust options]`: Locust with a scenario preloaded.

Identical to `locust -f scenarios/<scenario>.py ...`, with one difference: Locust
prints `--help` before it loads a locustfile, so only this form lists the gauntlet
arguments in `--help`.

    python -m scenarios ramp --help
    python -m scenarios spike --headless -t 2m --publish-rate 20
"""

from __future__ import annotations

import importlib
import sys

from scenarios.catalogue import SCENARIOS_DIR, known_scenarios, resolve_scenario


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("-"):
        sys.stderr.write(
            "usage: python -m scenarios <scenario> [locust options]\n"
            f"scenarios: {', '.join(known_scenarios())} (or a path to a locustfile)\n"
        )
        sys.exit(2)
    name = args.pop(0)
    try:
        path = resolve_scenario(name)
    except ValueError as exc:
        sys.stderr.write(f"gauntlet: error: {exc}\n")
        sys.exit(2)
    if path.parent == SCENARIOS_DIR:
        # Runs the scenario's install(): its defaults and our argument listener are in
        # place before Locust builds the parser that prints --help.
        importlib.import_module(f"scenarios.{path.stem}")
    from locust.main import main as locust_main

    sys.argv = ["locust", "-f", str(path), *args]
    locust_main()


if __name__ == "__main__":
    main()
