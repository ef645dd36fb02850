"""Connect-storm pacing and the per-spawn-message cost of Locust workers: what lets one
process ramp thousands of sockets (docs/capacity.md, 10,000 sockets)."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap

from scenarios.connect_pacing import AT_ONCE, FirstConnects


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_big_spawn_step_connects_over_the_tick_and_a_small_one_at_once():
    clock = Clock()
    pacer = FirstConnects(clock=clock)
    rng = random.Random(7)
    step = [pacer.delay(1.0, rng) for _ in range(500)]  # one tick's users, in one instant
    assert step[:AT_ONCE] == [0.0] * AT_ONCE, "the first of a burst connect at once"
    later = step[AT_ONCE:]
    assert all(0.0 <= d < 1.0 for d in later) and all(d > 0 for d in later)
    # Spread evenly over the tick, not bunched: each tenth of the second gets a share.
    tenths = [sum(1 for d in later if i / 10 <= d < (i + 1) / 10) for i in range(10)]
    assert min(tenths) >= len(later) / 10 * 0.5, tenths

    clock.now += 1.0  # the next tick: a new burst, whose first users again go at once
    assert [pacer.delay(1.0, rng) for _ in range(AT_ONCE)] == [0.0] * AT_ONCE
    clock.now += 1.0
    small = [pacer.delay(1.0, rng) for _ in range(AT_ONCE)]  # a test's handful of users
    assert small == [0.0] * AT_ONCE


def test_no_spread_connects_everyone_at_once():
    pacer = FirstConnects(clock=Clock())
    assert {pacer.delay(0.0, random.Random(1)) for _ in range(1000)} == {0.0}


PROBE = textwrap.dedent("""
    import sys
    from locust import argument_parser
    built = 0
    real = argument_parser.get_empty_argument_parser
    def counting(*a, **k):
        global built
        built += 1
        return real(*a, **k)
    argument_parser.get_empty_argument_parser = counting
    if sys.argv[1] == "fixed":
        from scenarios import locust_fixes
        locust_fixes.install()
    options = {f"custom_{i}": i for i in range(60)} | {"host": "x", "num_users": 1}
    for message in range(5):  # five spawn messages, filtered as WorkerRunner does it
        custom = {k: v for k, v in options.items() if k not in argument_parser.default_args_dict()}
    assert set(custom) == {f"custom_{i}" for i in range(60)}, custom
    print(built)
""")


def _parsers_built(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.split()[-1])


def test_a_worker_parses_locusts_defaults_once_not_per_option_per_spawn_message():
    assert _parsers_built("stock") == 5 * 62, "negative control: stock Locust builds a parser per option"
    assert _parsers_built("fixed") == 1


def test_the_worker_still_filters_through_the_module_attribute_the_fix_replaces():
    # A Locust that imported the function by name would bypass the fix: fail loudly here.
    # (Read, not imported: importing Locust would patch this test process for gevent.)
    from importlib.util import find_spec
    from pathlib import Path

    source = (Path(find_spec("locust").origin).parent / "runners.py").read_text()
    assert "argument_parser.default_args_dict()" in source
