"""The seeded monkey: the same seed replays the same faults; it never overlaps a target."""

from __future__ import annotations

import pytest

from chaos.monkey import MonkeyConfig, monkey_timeline, parse_range
from chaos.target import Topology
from chaos.timeline import TimelineError, load_timeline

THREE = Topology(("r1", "r2", "r3"), "redis")
KINDS = ("kill", "pause", "latency", "partition", "drain", "crash")


def plan(timeline):
    return [(e.kind, e.target, e.at, e.duration, e.params) for e in timeline.faults]


def test_same_seed_same_timeline_and_different_seeds_differ():
    config = MonkeyConfig(seed=42, faults=KINDS, interval=(5, 15), duration=600)
    first, again = monkey_timeline(config, THREE), monkey_timeline(config, THREE)
    assert plan(first) == plan(again) and len(first.faults) >= 20
    others = {tuple(map(str, plan(monkey_timeline(MonkeyConfig(seed=s, faults=KINDS, interval=(5, 15),
                                                                duration=600), THREE)))) for s in range(5)}
    assert len(others) == 5, "different seeds must give different timelines"


def test_stored_timeline_replays_exactly(tmp_path):
    timeline = monkey_timeline(MonkeyConfig(seed=3, faults=KINDS, interval=(4, 9), duration=120), THREE)
    path = tmp_path / "monkey.toml"
    path.write_text(timeline.to_toml())
    assert plan(load_timeline(path).validate(THREE)) == plan(timeline)


@pytest.mark.parametrize("seed", range(10))
def test_never_overlaps_a_target_keeps_one_replica_whole_and_heals_before_the_end(seed):
    config = MonkeyConfig(seed=seed, faults=KINDS, interval=(2, 6), duration=180, hold=(3, 12))
    timeline = monkey_timeline(config, THREE)  # validate() inside refuses overlaps
    kinds = {e.kind for e in timeline.faults}
    assert kinds <= set(KINDS) and len(kinds) >= 3
    for entry in timeline.faults:
        assert entry.at + entry.duration < 180
        assert config.interval[0] <= entry.at or entry is timeline.faults[0]
        assert 3 <= entry.duration <= 12
    # At no moment are all three replicas taken out (killed, paused, drained) at once.
    out_kinds = {"kill", "pause", "drain"}
    for t in [x / 2 for x in range(360)]:
        out = {e.target for e in timeline.faults if e.kind in out_kinds and e.at <= t < e.at + e.duration}
        assert len(out) < 3


def test_bad_monkey_settings_are_refused():
    with pytest.raises(ValueError, match="unknown fault 'nuke'"):
        monkey_timeline(MonkeyConfig(seed=1, faults=("nuke",)), THREE)
    with pytest.raises(ValueError, match="does not play 'scale-in'"):
        monkey_timeline(MonkeyConfig(seed=1, faults=("scale-in",)), THREE)
    with pytest.raises(ValueError, match="leaves no room"):
        monkey_timeline(MonkeyConfig(seed=1, interval=(30, 60), duration=20), THREE)
    with pytest.raises(TimelineError, match="no fault fits"):
        monkey_timeline(MonkeyConfig(seed=1, faults=("kill",), interval=(5, 5), duration=8), Topology(("r1",), "redis"))
    assert parse_range("10s..30s") == (10.0, 30.0) and parse_range("20s") == (20.0, 20.0)
    with pytest.raises(ValueError, match="upper end is below"):
        parse_range("30s..10s")
