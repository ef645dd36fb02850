"""Measurement honesty on synthetic runs: a generator short of CPU, or whose loop ran
late, makes the measurement not valid; a latency target missed by less than the
generator's own lateness is then unknown (not the app's fault), one missed by more
stays failed, one met stays met; without generator health nothing changes."""

from __future__ import annotations

import io
import json
import shutil

import pytest
from capacity_support import write_loadgen

from reports.cli import print_verdicts
from reports.html import report_run
from reports.measurement import assess
from reports.records import load_run
from tests.synthetic import SyntheticSpec, build_run
from reports.check import Verdict
from reports.verdict import evaluate_run

SECONDS = 120
TIGHT = "ws_delivery_latency: p(99)<1"  # synthetic deliveries take 5-55 ms: always missed
LOOSE = "ws_delivery_latency{path:cross}: p(99)<10000"  # other tags: not replaced by TIGHT


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return build_run(tmp_path_factory.mktemp("base") / "run",
                     SyntheticSpec(seed=13, faults=(), fail_fraction=0.0, unknown_fraction=0.0)).run_dir


@pytest.fixture
def run_dir(base, tmp_path):
    return shutil.copytree(base, tmp_path / "run")


def verdicts(run_dir, *slo):
    outcome = evaluate_run(run_dir, list(slo))
    return outcome, {r.name.removeprefix("slo "): r for r in outcome.slo}


def test_a_generator_that_kept_up_leaves_the_verdicts_alone(run_dir):
    write_loadgen(run_dir, SECONDS, cpu=lambda w, t: 0.3, lag_ms=lambda w, t: 3.0)
    outcome, by = verdicts(run_dir, TIGHT, LOOSE)
    assert outcome.measurement.valid is True and outcome.measurement.reasons == ()
    assert by[TIGHT].verdict is Verdict.FAIL and by[TIGHT].note == ""
    assert by[LOOSE].verdict is Verdict.PASS


def test_a_saturated_generator_cannot_blame_the_app_for_a_small_miss(run_dir):
    write_loadgen(run_dir, SECONDS, cpu=lambda w, t: 0.97 if t > 30 else 0.4, lag_ms=lambda w, t: 300.0)
    outcome, by = verdicts(run_dir, TIGHT, LOOSE)
    m = outcome.measurement
    assert m.valid is False
    assert any("at ≥ 90 % of a core" in r for r in m.reasons) and any("ms late in" in r for r in m.reasons)
    assert m.loop_lateness_ms == pytest.approx(300.0)
    assert by[TIGHT].verdict is Verdict.UNKNOWN and "could not keep up" in by[TIGHT].note
    assert by[LOOSE].verdict is Verdict.PASS, "lateness only adds: a target met stays met"
    check = next(c for c in outcome.checks if c.name == f"slo {TIGHT}")
    assert check.verdict is Verdict.UNKNOWN and "cannot tell whether the app missed" in check.summary
    summary = json.loads(outcome.summary_path.read_text())
    assert summary["measurement"]["valid"] is False and summary["measurement"]["reasons"] == list(m.reasons)


def test_a_miss_larger_than_the_generators_lateness_stays_failed(run_dir):
    # Short of CPU all along, but its loop ran on time: the lateness is 2 ms, the miss 50.
    write_loadgen(run_dir, SECONDS, cpu=lambda w, t: 0.99, lag_ms=lambda w, t: 2.0)
    outcome, by = verdicts(run_dir, TIGHT)
    assert outcome.measurement.valid is False
    assert by[TIGHT].verdict is Verdict.FAIL and "even allowing" in by[TIGHT].note


def test_a_short_burst_of_lag_is_not_enough(run_dir):
    # Two late seconds in 120 (the ramp's connect storm): within the limits.
    write_loadgen(run_dir, SECONDS, cpu=lambda w, t: 0.5, lag_ms=lambda w, t: 400.0 if t in (3, 4) else 4.0)
    assert assess(load_run(run_dir)).valid is True


def test_a_stopped_generator_counts_every_second_it_was_stopped(run_dir):
    import csv

    for worker_dir in sorted((run_dir / "records").iterdir()):
        rows = [(1_763_900_000.0 + t, 0.2, 1.0, 2.0) for t in range(1, SECONDS) if not 50 < t <= 58]
        rows.insert(next(i for i, r in enumerate(rows) if r[0] > 1_763_900_050), (1_763_900_058.0, 0.2, 900, 8000))
        with open(worker_dir / "loadgen.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(("ts", "cpu", "lag_mean_ms", "lag_max_ms"))
            w.writerows(sorted(rows))
    m = assess(load_run(run_dir))
    assert m.valid is False and all(w.late_seconds >= 8 for w in m.workers)


def test_without_generator_health_nothing_is_claimed(run_dir):
    outcome, by = verdicts(run_dir, TIGHT)
    assert outcome.measurement.valid is None and outcome.measurement.status == "not recorded"
    assert by[TIGHT].verdict is Verdict.FAIL


def test_the_headers_say_whether_the_measurement_was_valid(run_dir):
    write_loadgen(run_dir, SECONDS, cpu=lambda w, t: 0.97, lag_ms=lambda w, t: 250.0)
    outcome, path = report_run(run_dir, [TIGHT])
    page = path.read_text()
    header = page[page.index("<header>"):page.index("</header>")]
    assert 'id="measurement" class="bad"' in header and "measurement NOT valid" in header
    out = io.StringIO()
    print_verdicts(outcome, out)
    assert "measurement NOT valid: the load generator could not keep up" in out.getvalue()
