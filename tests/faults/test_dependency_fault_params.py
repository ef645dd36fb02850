"""Crash and flush as users write them: what data survives, what they may overlap, what
the app is promised (no stack needed: faults are built against a topology)."""

from __future__ import annotations

import pytest

from chaos.faults import CATALOGUE, describe_catalogue
from chaos.faults.contract import BLACKHOLE, CRASH_KEPT, CRASH_LOST, DOWN, FLUSH, Connect, Data
from chaos.monkey import MonkeyConfig, monkey_timeline
from chaos.target import Topology
from chaos.timeline import TimelineError, parse_timeline
from harness.spec import SpecError, StackSpec

AOF = Topology(("r1", "r2", "r3"), "redis")
NO_PERSISTENCE = Topology(("r1", "r2", "r3"), "redis", redis_persistent=False)
PG_BROKER = Topology(("r1", "r2", "r3"), "postgres")


def crash(target: str, topology: Topology, **params):
    return CATALOGUE["crash"].build(target, params, topology)


@pytest.mark.parametrize("target,topology,expected", [
    ("redis", AOF, "kept"),
    ("redis", NO_PERSISTENCE, "lost"),
    ("postgres", NO_PERSISTENCE, "kept"),
    ("broker", PG_BROKER, "kept"),
])
def test_crash_data_defaults_to_what_the_stacks_persistence_gives(target, topology, expected):
    fault = crash(target, topology)
    assert fault.data == expected and fault.params()["data"] == expected, "the journal says what was chosen"
    assert fault.view() == (CRASH_KEPT if expected == "kept" else CRASH_LOST)


def test_crash_data_lost_on_an_aof_stack_and_the_contract_says_so():
    fault = crash("redis", AOF, data="lost")
    assert fault.data == "lost" and fault.view().data is Data.LOST and fault.view().connect is Connect.REFUSED


@pytest.mark.parametrize("target,topology,params,message", [
    ("postgres", AOF, {"data": "lost"}, "Postgres keeps every acknowledged commit"),
    ("broker", PG_BROKER, {"data": "lost"}, "Postgres keeps every acknowledged commit"),
    ("redis", NO_PERSISTENCE, {"data": "kept"}, "without persistence"),
    ("redis", AOF, {"data": "gone"}, "expected one of default, kept, lost"),
])
def test_crash_data_that_cannot_be_made_true_is_refused(target, topology, params, message):
    with pytest.raises(ValueError, match=message):
        crash(target, topology, **params)


def overlap(first: dict, second: dict) -> None:
    parse_timeline({"name": "t", "fault": [{"at": "10s", "for": "10s", **first},
                                           {"at": "12s", "for": "3s", **second}]}, "inline").validate(AOF)


@pytest.mark.parametrize("other", [
    {"kind": "down", "target": "redis"},
    {"kind": "down", "target": "redis@r2"},
    {"kind": "partition", "target": "r2", "dependency": "redis"},
])
def test_crash_may_not_overlap_a_fault_that_switches_the_same_proxies(other):
    # Its heal would open a proxy in front of a dead server (accept, then close).
    with pytest.raises(TimelineError, match="overlaps"):
        overlap({"kind": "crash", "target": "redis"}, other)


@pytest.mark.parametrize("other", [
    {"kind": "latency", "target": "redis"},
    {"kind": "down", "target": "postgres"},
    {"kind": "crash", "target": "postgres"},
])
def test_crash_may_overlap_toxics_and_other_dependencies(other):
    overlap({"kind": "crash", "target": "redis"}, other)


def test_flush_targets_redis_only_and_is_an_action():
    fault = CATALOGUE["flush"].build("broker", {}, AOF)
    assert fault.target == "redis" and not CATALOGUE["flush"].sustained and fault.view() == FLUSH
    for target, topology in (("postgres", AOF), ("broker", PG_BROKER)):
        with pytest.raises(ValueError, match="flush empties Redis"):
            CATALOGUE["flush"].build(target, {}, topology)
    with pytest.raises(TimelineError, match="action"):
        parse_timeline({"name": "t", "fault": [{"kind": "flush", "target": "redis", "at": "1s", "for": "5s"}]},
                       "inline").validate(AOF)
    timeline = parse_timeline({"name": "t", "fault": [{"kind": "flush", "target": "redis", "at": "1s"},
                                                      {"kind": "latency", "target": "redis", "at": "1s",
                                                       "for": "5s"}]}, "inline").validate(AOF)
    assert [e.kind for e in timeline.faults] == ["flush", "latency"]


def test_the_monkey_plays_flush():
    timeline = monkey_timeline(MonkeyConfig(seed=5, faults=("flush", "kill"), interval=(3, 6), duration=90), AOF)
    assert {"flush", "kill"} <= {e.kind for e in timeline.faults}
    assert all(e.target == "redis" and e.duration is None for e in timeline.faults if e.kind == "flush")


def test_every_dependency_fault_states_what_the_app_sees():
    assert CATALOGUE["down"].build("redis", {}, AOF).view() == DOWN
    assert CATALOGUE["blackhole"].build("redis", {}, AOF).view() == BLACKHOLE
    assert CATALOGUE["partition"].build("r2", {"dependency": "redis"}, AOF).view() == DOWN
    assert CATALOGUE["partition"].build("r2", {"dependency": "redis", "mode": "blackhole"}, AOF).view() == BLACKHOLE
    assert CATALOGUE["kill"].build("r2", {}, AOF).view() is None, "a replica fault has no dependency contract"
    blocks: dict[str, list[str]] = {}
    for line in describe_catalogue().splitlines():
        if line and not line.startswith(" "):
            blocks[line.split()[0]] = []
        elif blocks:
            blocks[list(blocks)[-1]].append(line.strip())
    for kind in ("down", "crash", "blackhole", "partition", "flush"):
        assert any(line.startswith("the app sees: ") for line in blocks[kind]), (kind, blocks[kind])
    assert not any(line.startswith("the app sees: ") for line in blocks["kill"])


def test_redis_persistence_is_checked_and_reaches_the_topology():
    assert Topology.from_spec(StackSpec(redis_persistence="none")).redis_persistent is False
    assert Topology.from_spec(StackSpec()).redis_persistent is True
    with pytest.raises(SpecError, match="unknown Redis persistence 'rdb'"):
        StackSpec(redis_persistence="rdb").validate()
