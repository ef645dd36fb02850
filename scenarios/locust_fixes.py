"""Fixes for the Locust release in use, applied when a locustfile loads the plugin.

Locust's worker asks `argument_parser.default_args_dict()` once per option of every spawn
message (a dict comprehension over the master's parsed options), and each call builds and
runs the whole argument parser again. With gauntlet's options that is ~100 parser builds,
seconds of CPU, per spawn message: the worker's event loop stops, its heartbeats stop, and
the master drops it as missing before a single user starts (`--processes 2` delivered
nothing). The defaults cannot change within a process, so the first answer is kept.
"""

from __future__ import annotations

import functools

from locust import argument_parser


def install() -> None:
    """Idempotent: a second install keeps the first cache."""
    current = argument_parser.default_args_dict
    if getattr(current, "cache_info", None) is None:
        argument_parser.default_args_dict = functools.lru_cache(maxsize=1)(current)
