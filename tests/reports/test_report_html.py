"""The HTML report: every section and image, self-contained, and it renders."""

from __future__ import annotations

import base64
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from report_support import ReportParser

from reports import plots, series
from reports.html import SECTION_IDS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def parsed(reported_run):
    _, path = reported_run
    p = ReportParser()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def test_every_section_in_order(parsed):
    assert parsed.sections == list(SECTION_IDS)


def test_images_are_inline_pngs_in_their_sections(parsed):
    wanted = {"latency": 3, "throughput": 1, "load": 2, "delivery-latency": 1, "loss": 1, "matrix": 1}
    found: dict[str, int] = {}
    for section, src in parsed.images:
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1])
        assert data.startswith(PNG_MAGIC) and len(data) > 2000
        found[section] = found.get(section, 0) + 1
    assert found == wanted


def test_self_contained(parsed, reported_run):
    assert parsed.urls == []
    assert "script" not in parsed.tags and "link" not in parsed.tags
    text = reported_run[1].read_text()
    assert "http://" not in text and "https://" not in text


def test_verdicts_slo_and_fault_table(parsed, reported_run):
    run, _ = reported_run
    verdict = " ".join(parsed.text["verdict"])
    assert "delivery" in verdict and "FAIL" in verdict
    slo = " ".join(parsed.text["slo"])
    for metric in ("http_req_duration", "http_req_failed", "ws_delivery_latency{path:cross}",
                   "delivery_lost_eventual"):
        assert metric in slo
    faults = " ".join(parsed.text["faults"])
    assert "partition" in faults and "kill" in faults and "recovered" in faults
    delivery = " ".join(parsed.text["delivery"])
    assert f"{run.truth.lost_eventual:,}" in delivery
    meta = " ".join(parsed.text["metadata"])
    assert str(run.spec.seed) in meta and "redis" in meta


def test_csv_exports(reported_run):
    run, _ = reported_run
    csv_dir = run.run_dir / "csv"
    for name in ("latency.csv", "throughput.csv", "users.csv", "replicas.csv", "delivery.csv", "matrix.csv",
                 "delivery_latency_cdf.csv", "faults.csv", "slo.csv", "delivery_by_phase.csv"):
        frame = pd.read_csv(csv_dir / name)
        assert len(frame) > 0, name
    delivery = pd.read_csv(csv_dir / "delivery.csv")
    assert delivery["lost_live"].sum() == run.truth.lost_live
    assert (pd.read_csv(csv_dir / "latency.csv")["p99"] >= pd.read_csv(csv_dir / "latency.csv")["p50"]).all()


SPANS = [(10.0, 20.0, "f1 partition r2", "partition"), (40.0, 45.0, "f2 kill r3", "kill")]


def _shaded(fig) -> list[int]:
    """Per axes: the number of fault labels drawn on it."""
    counts = []
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        counts.append(sum(1 for t in ax.texts if t.get_text().strip() in ("f1 partition r2", "f2 kill r3")))
    return counts


def test_every_time_plot_shades_every_fault():
    t = np.arange(0.0, 60.0, 1.0)
    lat = pd.DataFrame({"t": np.concatenate([t, t]), "endpoint": ["a"] * 60 + ["b"] * 60, "count": 5,
                        "p50": 1.0, "p95": 2.0, "p99": 3.0})
    thr = pd.DataFrame({"t": t, "endpoint": "a", "per_s": 3.0, "errors_per_s": 0.5})
    users = pd.DataFrame({"t": t, "users": 10.0, "sockets": 8.0})
    per = pd.DataFrame({"t": t, "instance": "r1", "sockets": 4.0, "requests_per_s": 2.0, "frames_per_s": 9.0})
    loss = pd.DataFrame({"t": t, "expected_live": 10, "lost_live": 1, "lost_eventual": 0, "duplicated": 0})
    figures = [
        plots.latency_over_time(lat, SPANS, "x"), plots.throughput(thr, SPANS), plots.users_and_sockets(users, SPANS),
        plots.load_per_replica(per, per, per, SPANS), plots.loss_over_time(loss, SPANS, 1.0),
    ]
    for fig in figures:
        counts = _shaded(fig)
        assert counts and all(c == len(SPANS) for c in counts), counts
        plots.to_data_uri(fig)


def test_fault_spans_skip_failed_injections_and_extend_active_faults():
    from reports.records import FaultWindow

    faults = [FaultWindow("f1", "kill", "r2", 110.0, 120.0, "ok"),
              FaultWindow("f2", "kill", "r3", 130.0, None, "active"),
              FaultWindow("f3", "kill", "r1", 140.0, 141.0, "inject_failed")]
    assert series.fault_spans(faults, 100.0, 200.0) == [(10.0, 20.0, "f1 kill r2", "kill"),
                                                       (30.0, 100.0, "f2 kill r3", "kill")]


def test_empty_tables_still_plot():
    empty = pd.DataFrame(columns=["t", "endpoint", "count", "p50", "p95", "p99"])
    plots.to_data_uri(plots.latency_over_time(empty, [], "nothing"))
    plots.to_data_uri(plots.matrix_heatmap(pd.DataFrame()))
    plots.to_data_uri(plots.delivery_cdf(series.latency_cdf({"all": np.array([])})))


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_headless_chromium_renders_the_report(reported_run, tmp_path):
    import matplotlib.image as mpimg

    _, path = reported_run
    shot = tmp_path / "shot.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,4000",
           path.resolve().as_uri()]
    try:
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("chromium did not finish the screenshot within 120 s")
    assert shot.exists(), "chromium wrote no screenshot"
    image = mpimg.imread(shot)
    assert image.shape[0] >= 3000 and image.shape[1] >= 1200
    pixels = (image[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    colours = np.unique(pixels[:: 7], axis=0)
    assert len(colours) > 500, f"only {len(colours)} colours: a blank page?"
    white = (pixels.min(axis=1) > 245).mean()
    assert white < 0.97, f"{white:.1%} white"


def test_grouped_quantiles_match_numpy():
    rng = np.random.default_rng(1)
    keys = rng.integers(0, 40, 5000)
    values = rng.lognormal(3, 1, 5000)
    unique, counts, q = series.grouped_quantiles(keys, values, (0.5, 0.95, 0.99))
    for i, key in enumerate(unique):
        mine = values[keys == key]
        assert counts[i] == len(mine)
        assert q[:, i] == pytest.approx(np.percentile(mine, [50, 95, 99]))


def test_report_of_a_tiny_run_and_of_a_run_without_records(mini, tmp_path):
    import json

    from reports.html import build_report

    mini.connect("a", "u1", 0)
    mini.publish("k1", 10, user="u1")
    mini.recv("a", "u1", "k1", 10.05)
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "run.json").write_text(json.dumps({"name": "bare"}))
    for run_dir in (mini.write(), bare):
        p = ReportParser()
        p.feed(build_report(run_dir).read_text())
        assert p.sections == list(SECTION_IDS)
        assert p.images and all(src.startswith("data:image/png;base64,") for _, src in p.images)


def test_exported_times_keep_their_precision(reported_run):
    run, _ = reported_run
    lost = pd.read_csv(run.run_dir / "csv" / "delivery_lost.csv")
    assert lost["ts_sent"].min() > 1e9
    assert (lost["ts_sent"] % 1 != 0).any()  # sub-second digits survived


def test_counter_rate_targets_are_judged_per_second_of_each_phase(full_run, tmp_path):
    from reports.html import build_report

    run_dir = shutil.copytree(full_run.run_dir, tmp_path / "run")
    # About 30 requests/s throughout, faults included: rate>20 holds in every phase,
    # rate<25 breaks in every phase.
    page = build_report(run_dir, slo=["http_reqs: rate>20, rate<25"]).read_text(encoding="utf-8")
    rows = [row for row in page.split("<tr>") if "<td>http_reqs</td>" in row]
    held = next(row for row in rows if "rate &gt; 20" in row)
    broke = next(row for row in rows if "rate &lt; 25" in row)
    assert held.count('class="ok"') == 3 and 'class="bad"' not in held
    assert broke.count('class="bad"') == 3
    headline = page.split('<ul class="headline">', 1)[1].split("</ul>", 1)[0]
    missed = next(item for item in headline.split("<li>") if "Target missed" in item and "http_reqs" in item)
    assert "broken steady" in missed and "in faults" in missed and "after heal" in missed
