"""Timelines are refused before anything starts, with the file, the fault and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.target import Topology
from chaos.timeline import TimelineError, check_timeline, load_timeline, shipped_timelines
from harness.spec import StackSpec

THREE = Topology(("r1", "r2", "r3"), "redis")

GOOD = """
name = "mix"
[[fault]]
kind = "kill"
target = "r2"
at = "10s"
for = "5s"
restart_after = "1s"
[[fault]]
kind = "latency"
target = "broker"
at = "12s"
for = "10s"
latency = "250ms"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.toml"
    path.write_text(text)
    return path


def fault(lines: str, at: str = "10s", dur: str | None = "5s") -> str:
    extra = f'for = "{dur}"\n' if dur else ""
    return f'[[fault]]\n{lines}\nat = "{at}"\n{extra}'


def test_a_good_timeline_parses_with_typed_parameters(tmp_path):
    timeline = load_timeline(write(tmp_path, GOOD)).validate(THREE)
    kill, latency = timeline.faults
    assert (kill.kind, kill.target, kill.at, kill.duration) == ("kill", "r2", 10.0, 5.0)
    assert kill.make(THREE).restart_after == 1.0
    made = latency.make(THREE)
    assert made.target == "redis" and made.latency == 0.25, "`broker` resolves to the broker's dependency"
    assert timeline.end() == 22.0


@pytest.mark.parametrize("body,expected", [
    (fault('kind = "explode"\ntarget = "r2"'), "fault #1 (explode r2): unknown fault 'explode'"),
    (fault('target = "r2"'), "fault #1 (?"),
    (fault('kind = "kill"\ntarget = "r2"', at="soon"), "at: invalid duration 'soon'"),
    (fault('kind = "kill"\ntarget = "r2"', dur="-3s"), "for: invalid duration '-3s'"),
    (fault('kind = "kill"\ntarget = "r2"', dur=None), "missing `for`"),
    (fault('kind = "kill"\ntarget = "r2"', dur="0s"), "for: must be more than 0s"),
    (fault('kind = "restart"\ntarget = "r2"'), "restart is an action"),
    (fault('kind = "latency"\ntarget = "redis"\nlatencyy = "1s"'), "unknown parameter 'latencyy'"),
    (fault('kind = "latency"\ntarget = "redis"\nlatency = "fast"'), "parameter latency: invalid duration 'fast'"),
    (fault('kind = "latency"\ntarget = "redis"\ntoxicity = 2'), "parameter toxicity: must be at most 1"),
    (fault('kind = "partition"\ntarget = "r2"\nmode = "cut"'), "parameter mode: expected one of disable, blackhole"),
    ('[[fault]]\nkind = "kill"\ntarget = "r2"\nfor = "5s"\n', "missing `at`"),
    ('nmae = "x"\n' + fault('kind = "kill"\ntarget = "r2"'), "unknown key 'nmae'"),
    ('name = "empty"\n', "no faults"),
    ("[[fault]\n", "not valid TOML"),
])
def test_each_kind_of_mistake_is_named_with_file_and_index(tmp_path, body, expected):
    path = write(tmp_path, body)
    with pytest.raises(TimelineError) as err:
        load_timeline(path).validate(THREE)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


@pytest.mark.parametrize("body,topology,expected", [
    (fault('kind = "kill"\ntarget = "r4"'), THREE, "fault #1 (kill r4): no replica named 'r4' (replicas: r1, r2, r3)"),
    (fault('kind = "latency"\ntarget = "mysql"'), THREE, "no dependency named 'mysql'"),
    (fault('kind = "latency"\ntarget = "redis@r9"'), THREE, "no replica named 'r9'"),
    (fault('kind = "crash"\ntarget = "redis@r2"'), THREE, "acts on the redis server itself"),
    (fault('kind = "latency"\ntarget = "broker"'), Topology(("r1",), "memory"), "broker 'memory' has no dependency"),
    (fault('kind = "partition"\ntarget = "r1"'), Topology(("r1",), "redis", fault_proxies=False),
     "needs the fault proxies"),
    (fault('kind = "kill"\ntarget = "r1"') + fault('kind = "pause"\ntarget = "r1"', at="14s"), THREE,
     "fault #2 (pause r1): overlaps fault #1 (kill r1, 10s..15s) on r1"),
    (fault('kind = "latency"\ntarget = "redis"') + fault('kind = "partition"\ntarget = "r3"\ndependency = "redis"',
                                                         at="12s"), THREE,
     "fault #2 (partition r3): overlaps fault #1 (latency redis, 10s..15s) on redis-r3"),
    (fault('kind = "rolling-restart"\ntarget = "all"', dur=None) + fault('kind = "drain"\ntarget = "r3"', at="12s"),
     THREE, "overlaps fault #1 (rolling-restart all"),
])
def test_targets_and_overlaps_are_checked_against_the_stack(tmp_path, body, topology, expected):
    path = write(tmp_path, body)
    timeline = load_timeline(path)  # parses: the problem is only visible against a stack
    with pytest.raises(TimelineError) as err:
        timeline.validate(topology)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_faults_on_different_targets_or_at_different_times_may_overlap(tmp_path):
    body = (fault('kind = "kill"\ntarget = "r1"') + fault('kind = "kill"\ntarget = "r2"', at="11s")
            + fault('kind = "kill"\ntarget = "r1"', at="15s") + fault('kind = "crash"\ntarget = "redis"', at="11s")
            + fault('kind = "latency"\ntarget = "redis@r1"', at="11s"))
    assert len(load_timeline(write(tmp_path, body)).validate(THREE).faults) == 5


@pytest.mark.parametrize("target", ["stack", "all", "", "Stack"])
def test_scale_in_count_applies_to_every_way_of_writing_the_whole_stack(tmp_path, target):
    path = write(tmp_path, fault(f'kind = "scale-in"\ntarget = "{target}"\ncount = 2', dur="20s"))
    (entry,) = load_timeline(path).validate(THREE).faults
    made = entry.make(THREE)
    assert made.target == "stack" and made.victims(THREE.replicas) == ["r2", "r3"]


def test_scale_in_count_is_refused_for_a_named_replica(tmp_path):
    path = write(tmp_path, fault('kind = "scale-in"\ntarget = "r2"\ncount = 2', dur="20s"))
    with pytest.raises(TimelineError, match="count applies only to target 'stack'"):
        load_timeline(path)


def test_a_fault_after_the_end_of_the_run_is_refused(tmp_path):
    path = write(tmp_path, fault('kind = "kill"\ntarget = "r1"', at="2m"))
    with pytest.raises(TimelineError, match="starts at 2m, but the run lasts only 1m30s"):
        load_timeline(path).validate(THREE, run_duration=90)


@pytest.mark.parametrize("name", shipped_timelines())
def test_shipped_timelines_fit_the_default_stack_and_a_90s_demo(name):
    spec = StackSpec()  # 3 replicas, redis
    timeline = check_timeline(name, spec, run_duration=90)
    assert timeline.faults and timeline.description
    assert timeline.end() <= 75, "leave time to recover before a 90 s run ends"
    check_timeline(name, StackSpec(broker="postgres"))


def test_shipped_timelines_include_the_documented_set():
    assert {"replica-kill", "redis-outage", "postgres-outage", "broker-latency", "partition", "rolling-restart",
            "demo"} <= set(shipped_timelines())


def test_a_name_that_is_neither_file_nor_shipped_lists_the_shipped_ones():
    with pytest.raises(TimelineError, match="no such timeline file .*replica-kill"):
        load_timeline("replica-kil")


def test_written_timeline_round_trips(tmp_path):
    timeline = load_timeline(write(tmp_path, GOOD))
    again = load_timeline(write(tmp_path, timeline.to_toml()))
    assert [(e.kind, e.target, e.at, e.duration, e.params) for e in again.faults] == \
        [(e.kind, e.target, e.at, e.duration, e.params) for e in timeline.faults]
