"""What the report makes of resource samples: the component that sat at its limit is
named in the verdict's notes (and a busy but not saturated one is not), connections
per replica are a threshold metric, and the report has the resources section."""

from __future__ import annotations

import json

import pytest
from capacity_support import write_resources

from reports.html import report_run
from reports.records import load_run
from reports.resources import summarize
from tests.synthetic import SyntheticSpec, build_run
from reports.thresholds import ThresholdError, parse
from reports.check import Verdict
from reports.verdict import evaluate_run

SECONDS = 120


@pytest.fixture
def run_dir(tmp_path):
    return build_run(tmp_path / "run", SyntheticSpec(seed=11, faults=(), fail_fraction=0.0,
                                                     unknown_fraction=0.0)).run_dir


def redis_hot(name: str, t: int) -> float:
    """Redis at a full core for the second half of the run; the rest light."""
    if name == "redis":
        return 0.98 if t > SECONDS // 2 else 0.3
    return 0.1


def test_the_component_at_its_limit_is_named_in_the_notes(run_dir):
    write_resources(run_dir, SECONDS, redis_hot)
    outcome = evaluate_run(run_dir)
    assert any(n.startswith("redis (redis) sat at its limit") for n in outcome.notes), outcome.notes
    assert not any(n.startswith("r1 ") for n in outcome.notes)
    summary = json.loads(outcome.summary_path.read_text())
    assert summary["notes"] == outcome.notes
    redis = next(c for c in summary["resources"]["components"] if c["component"] == "redis")
    assert redis["saturated"] and 0.4 < redis["at_limit_share"] < 0.6
    assert summary["resources"]["bottleneck"].startswith("redis")


def test_busy_below_the_limit_or_only_for_a_blip_is_not_a_bottleneck(run_dir):
    # 80 % of a core all the time, and one second at a full core: neither is "at its limit".
    write_resources(run_dir, SECONDS, lambda name, t: 1.0 if (name == "r1" and t == 50) else
                    (0.8 if name == "redis" else 0.05))
    run = load_run(run_dir)
    summary = summarize(run)
    assert summary.saturated == [] and summary.bottleneck() == "nothing at its limit"
    notes = [n for n in evaluate_run(run).notes if not n.startswith("replica health not judged")]
    assert notes == []  # the synthetic run has no replicas.jsonl; no resource note either


def test_a_saturated_machine_without_a_saturated_component_says_so(run_dir):
    # Seven components at 0.3 cores each: 2.1 cores wanted, 2 cores busy, none at its own limit.
    write_resources(run_dir, SECONDS, lambda name, t: 0.3)
    summary = summarize(load_run(run_dir))
    assert summary.saturated == []
    assert "the machine's 2 cores" in summary.bottleneck()
    assert any(n.startswith("the machine's 2 cores were busy") for n in summary.notes())


def test_connections_per_replica_is_a_threshold(run_dir):
    # r2 opens a fifth connection to Postgres for ten seconds: a per-replica limit of 2 catches it.
    write_resources(run_dir, SECONDS, lambda name, t: 0.1,
                    connections=lambda replica, dep, t: 5 if (replica == "r2" and dep == "postgres" and
                                                              40 < t <= 50) else 2)
    slo = ["db_connections_per_replica: max<=2", "redis_connections_per_replica: max<=2",
           "db_connections: max<200", "db_connections_per_replica{instance:r1}: max<=2"]
    outcome = evaluate_run(run_dir, slo)
    by_name = {r.name: r for r in outcome.slo}
    assert by_name["slo db_connections_per_replica: max<=2"].verdict is Verdict.FAIL
    assert by_name["slo db_connections_per_replica: max<=2"].observed == 5
    assert by_name["slo db_connections_per_replica{instance:r1}: max<=2"].verdict is Verdict.PASS
    assert by_name["slo redis_connections_per_replica: max<=2"].verdict is Verdict.PASS
    total = by_name["slo db_connections: max<200"]
    assert total.verdict is Verdict.PASS and total.observed == 2 + 5 + 2, "summed over replicas per sample"


def test_gauges_take_plain_numbers_and_a_run_without_samples_is_unknown(tmp_path, run_dir):
    with pytest.raises(ThresholdError, match="plain number"):
        parse("db_connections_per_replica: max<=2ms")
    parse("component_cpu{component:redis}: p(95)<0.9")
    outcome = evaluate_run(run_dir, ["db_connections_per_replica: max<=2"])  # no samples written
    (result,) = [r for r in outcome.slo if r.metric == "db_connections_per_replica"]
    assert result.verdict is Verdict.UNKNOWN, "no samples: cannot tell"


def test_the_report_has_the_resources_section_with_its_plots(run_dir):
    write_resources(run_dir, SECONDS, redis_hot)
    _, path = report_run(run_dir)
    page = path.read_text()
    start = page.index('<section id="resources">')
    section = page[start:page.index("</section>", start)]
    assert section.count("<img") == 2, "CPU and memory; connections per replica"
    assert "redis" in section and 'class="bad"' in section
    assert "Note</b>: redis (redis) sat at its limit" in page, "named in the headline"
    assert (run_dir / "csv" / "resources.csv").is_file()
