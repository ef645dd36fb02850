"""`gauntlet run` makes the load last past the last heal plus what recovery needs, or
says at start why it will not."""

from __future__ import annotations

import argparse

import pytest

from harness.commands.run import add_parser, build_plan
from harness.runner import recovery_margin
from scenarios.stages import parse_stages


def plan(*argv: str):
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = ["run", "ramp", *argv]
    return build_plan(parser.parse_args(args), args)


REDIS_OUTAGE_HEAL = 35.0  # chaos/timelines/redis-outage.toml: at 20 s for 15 s


def test_the_margin_is_the_heal_window_and_a_latency_window():
    assert recovery_margin() == 35.0


def test_a_flat_load_holds_longer():
    p = plan("--users", "50", "--duration", "60s", "--chaos", "redis-outage")
    assert p.duration == REDIS_OUTAGE_HEAL + recovery_margin()
    assert sum(s.duration for s in parse_stages(p.stages)) == p.duration
    assert p.load_note.startswith("the load lasts 1m10s instead of 1m")


def test_a_cut_runs_more_of_the_stages():
    p = plan("--duration", "40s", "--chaos", "redis-outage")
    assert (p.stages, p.cut, p.duration) == (None, 70.0, 70.0)


def test_stages_that_end_with_users_get_a_hold():
    p = plan("--stages", "20s:50,20s:50", "--chaos", "redis-outage")
    assert p.stages == "20s:50,20s:50,30s:50" and p.duration == 70.0


def test_stages_that_end_at_zero_stay_and_the_run_says_so():
    p = plan("--stages", "20s:50,20s:0", "--chaos", "redis-outage")
    assert p.stages == "20s:50,20s:0" and p.duration == 40.0
    assert "not extended" in p.load_note and "cannot be fully judged" in p.load_note


@pytest.mark.parametrize("argv", [("--users", "50", "--duration", "2m", "--chaos", "redis-outage"),
                                  ("--users", "50", "--duration", "60s")])
def test_nothing_changes_when_the_load_is_long_enough_or_has_no_faults(argv):
    p = plan(*argv)
    assert p.load_note == "" and p.duration == {"2m": 120.0, "60s": 60.0}[argv[3]]


def test_an_action_counts_for_as_long_as_it_usually_takes():
    p = plan("--stages", "20s:50,20s:50", "--chaos", "rolling-restart")
    assert p.duration > 35.0 + recovery_margin() - 1 and "instead of 40s" in p.load_note
