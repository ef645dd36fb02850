"""--stages: the k6-style grammar, its error messages, and the ramp it produces."""

from __future__ import annotations

import argparse

import pytest

from scenarios.stages import (
    JUMP_SPAWN_RATE, Stage, StagesError, argparse_stages, describe, parse_stages, spawn_rate_for, target_at,
)


def test_parses_the_k6_form():
    assert parse_stages("30s:100,60s:100,30s:500,30s:0") == (
        Stage(30, 100), Stage(60, 100), Stage(30, 500), Stage(30, 0))
    assert parse_stages(" 1m30s : 10 , 500ms:0 ") == (Stage(90, 10), Stage(0.5, 0))
    assert parse_stages("0s:50,10s:50") == (Stage(0, 50), Stage(10, 50))
    assert describe(parse_stages("90s:10,1h:0")) == "1m30s→10, 1h→0"


@pytest.mark.parametrize("text, message", [
    ("", "invalid --stages '': expected <duration>:<users>"),
    ("   ", "invalid --stages '': expected <duration>:<users>"),
    ("30s", "stage 1 '30s': expected <duration>:<users>, e.g. 30s:100"),
    ("30s:10:5", "stage 1 '30s:10:5': expected <duration>:<users>"),
    ("30s:100,,10s:0", "stage 2 '' is empty (stray comma?)"),
    ("30s:100,", "stage 2 '' is empty (stray comma?)"),
    ("thirty:100", "bad duration 'thirty', expected e.g. 30s, 2m, 1h30m"),
    ("30x:100", "bad duration '30x'"),
    ("-5s:100", "bad duration '-5s'"),
    ("30s:many", "users 'many' is not a whole number"),
    ("30s:1.5", "users '1.5' is not a whole number"),
    ("30s:-1", "users must be between 0 and 1000000"),
    ("30s:2000000", "users must be between 0 and 1000000"),
    ("0s:10,0s:0", "total duration is 0"),
    (",".join(["1s:1"] * 1001), "1001 stages, at most 1000"),
])
def test_each_bad_form_has_a_one_line_message(text, message):
    with pytest.raises(StagesError) as info:
        parse_stages(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_argparse_type_keeps_the_string_and_reports_a_usage_error():
    assert argparse_stages("10s:5") == "10s:5"  # plain values travel to Locust workers
    parser = argparse.ArgumentParser(prog="locust", exit_on_error=False)
    parser.add_argument("--stages", type=argparse_stages)
    with pytest.raises(argparse.ArgumentError, match="stage 1 '10s': expected"):
        parser.parse_args(["--stages", "10s"])


def test_linear_ramps_holds_and_jumps():
    stages = parse_stages("10s:100,10s:100,0s:500,10s:500,10s:0")
    assert target_at(stages, 0) == 0
    assert target_at(stages, 5) == 50
    assert target_at(stages, 9.99) == 100
    assert target_at(stages, 15) == 100
    assert target_at(stages, 20) == 500, "a 0s stage is a jump"
    assert target_at(stages, 35) == 250
    assert target_at(stages, 40) is None, "over: the shape stops the test"


def test_spawn_rate_reaches_each_step_within_a_tick():
    assert spawn_rate_for(100, 40) == 60
    assert spawn_rate_for(40, 100) == 60
    assert spawn_rate_for(10, 10) == 1.0
    assert spawn_rate_for(100_000, 0) == JUMP_SPAWN_RATE
