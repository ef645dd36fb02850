"""One module per `gauntlet` subcommand: `add_parser(subparsers)` and `run(args) -> int`."""
